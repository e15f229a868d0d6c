// mproc/mproc.hpp: everything (Python: import multiprocessing).
#pragma once

#include "mproc/connection.hpp"
#include "mproc/context.hpp"
#include "mproc/errors.hpp"
#include "mproc/futures.hpp"
#include "mproc/managers.hpp"
#include "mproc/pool.hpp"
#include "mproc/process.hpp"
#include "mproc/queues.hpp"
#include "mproc/serialize.hpp"
#include "mproc/shared_memory.hpp"
#include "mproc/sharedctypes.hpp"
#include "mproc/synchronize.hpp"
#include "mproc/threading.hpp"
#include "mproc/version.hpp"
