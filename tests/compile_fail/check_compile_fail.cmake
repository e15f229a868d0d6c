# Compiles SOURCE (with DEFINE, a -D flag, when given) and passes only if the compiler refuses it, its
# first error is mproc's own (mentions "mproc:"), and its errors mention each of EXPECT (split
# at '|': the type to blame, a fragment of the reason).
execute_process(
  COMMAND ${COMPILER} -std=c++20 -fsyntax-only ${INCLUDES} ${DEFINE} ${SOURCE}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} ${DEFINE} compiled, but it must not")
endif()
string(REGEX MATCH "error: [^\n]*" first "${err}")
string(FIND "${first}" "mproc:" at)
if(at EQUAL -1)
  message(FATAL_ERROR "the first error is not mproc's:\n${first}\n\nall of them:\n${err}")
endif()
string(REPLACE "|" ";" expect "${EXPECT}")
foreach(e IN LISTS expect)
  string(FIND "${err}" "${e}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the compiler refused ${SOURCE}, but its errors do not mention '${e}':\n${err}")
  endif()
endforeach()
string(REGEX MATCHALL "error: " all "${err}")
list(LENGTH all n)
message(STATUS "refused as expected (${n} errors); the first: ${first}")
