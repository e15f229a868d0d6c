// MPROC_TEST_ASAN: defined when the test is built with AddressSanitizer, which catches SIGSEGV
// itself and aborts: a test that crashes a worker checks that it died, not by which signal.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define MPROC_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MPROC_TEST_ASAN 1
#endif
#endif
