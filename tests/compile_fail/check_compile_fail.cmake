# Compiles SOURCE and passes only if the compiler refuses it with an error that mentions EXPECT.
execute_process(
  COMMAND ${COMPILER} -std=c++20 -fsyntax-only ${INCLUDES} ${SOURCE}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not")
endif()
string(FIND "${err}" "${EXPECT}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "the compiler refused ${SOURCE}, but its errors do not mention '${EXPECT}':\n${err}")
endif()
message(STATUS "refused as expected; the error mentions '${EXPECT}'")
