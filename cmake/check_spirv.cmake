# cmake -DSPV=x.spv -DDIS=spirv-dis -DFORBID="Cap1;Cap2" -P check_spirv.cmake
# Fails when the module declares a forbidden capability.
if(NOT FORBID)
  return()
endif()
execute_process(COMMAND ${DIS} ${SPV} OUTPUT_VARIABLE text RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "spirv-dis failed on ${SPV}")
endif()
foreach(cap IN LISTS FORBID)
  if(text MATCHES "OpCapability ${cap}\n")
    message(FATAL_ERROR "${SPV} declares capability ${cap}, which this variant must not need")
  endif()
endforeach()
