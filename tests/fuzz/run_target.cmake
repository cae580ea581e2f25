# Runs one libFuzzer target (cmake -P), for CTest and for run.sh:
#   FUZZER       the target's executable
#   MODE         "regressions": replay each saved reproducer once; "fuzz": fuzz a copy of the
#                seed corpus for SECONDS
#   SEEDS        the target's seed corpus in the repository (read only)
#   REGRESSIONS  the target's saved reproducers (the folder may not exist)
#   DICT         a libFuzzer dictionary, or empty
#   EXTRA        more libFuzzer flags, or empty
#   WORK         scratch folder in the build tree for the corpus copy and any crash input
#   SECONDS      how long to fuzz
foreach(var IN ITEMS FUZZER MODE WORK)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_target.cmake: ${var} is not set")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/artifacts")
set(_common -rss_limit_mb=2048 -timeout=10 "-artifact_prefix=${WORK}/artifacts/")
if(DICT)
  list(APPEND _common "-dict=${DICT}")
endif()
if(EXTRA)
  list(APPEND _common ${EXTRA})
endif()

if(MODE STREQUAL "regressions")
  set(_reproducers "")
  if(REGRESSIONS AND IS_DIRECTORY "${REGRESSIONS}")
    file(GLOB _reproducers LIST_DIRECTORIES false "${REGRESSIONS}/*")
    list(FILTER _reproducers EXCLUDE REGEX "\\.md$")
  endif()
  if(_reproducers)
    # One process per file: each starts from a fresh state, and one crash hides no other.
    set(_failing "")
    foreach(_file IN LISTS _reproducers)
      execute_process(COMMAND "${FUZZER}" ${_common} "${_file}" WORKING_DIRECTORY "${WORK}"
                      RESULT_VARIABLE _rc)
      if(NOT _rc EQUAL 0)
        list(APPEND _failing "${_file}")
      endif()
    endforeach()
    if(_failing)
      list(JOIN _failing "\n  " _list)
      message(FATAL_ERROR "${FUZZER}: these reproducers still fail:\n  ${_list}")
    endif()
  else()
    message(STATUS "no reproducers in ${REGRESSIONS}")
  endif()
elseif(MODE STREQUAL "fuzz")
  if(NOT SEEDS OR NOT SECONDS)
    message(FATAL_ERROR "run_target.cmake: fuzzing needs SEEDS and SECONDS")
  endif()
  file(MAKE_DIRECTORY "${WORK}/corpus")
  file(COPY "${SEEDS}/" DESTINATION "${WORK}/corpus")
  execute_process(COMMAND "${FUZZER}" ${_common} -max_total_time=${SECONDS} -print_final_stats=1
                          "${WORK}/corpus"
                  WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "${FUZZER} failed (exit ${_rc}); the input is in ${WORK}/artifacts")
  endif()
else()
  message(FATAL_ERROR "run_target.cmake: MODE must be regressions or fuzz, not '${MODE}'")
endif()
