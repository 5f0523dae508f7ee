# The include rules of ../shared/DESIGN.md, checked on the sources:
#   cmake -DSTRATA_SOURCE_DIR=<repo> -P cmake/check_levels.cmake
# Every level sees src/ (its include path is private to it, but one root for
# all levels), so a wrong-level include would still compile; this check
# (the `levels` test) is what fails on it. A file may include headers of its
# own folder, of the levels listed for it, and the public API (strata/);
# the CLI, the server and the Python module only the public API and their
# own folder's headers (included by bare name).
if(NOT STRATA_SOURCE_DIR)
  message(FATAL_ERROR "check_levels.cmake: pass -DSTRATA_SOURCE_DIR=<repo>")
endif()

set(allowed_core core)
set(allowed_formats core formats)
set(allowed_arch core formats arch)
set(allowed_kernels core formats kernels)   # formats: ops.h's rope_inv_freq(ModelConfig)
set(allowed_runtime core formats arch runtime)
set(allowed_tokenizer core formats tokenizer)
set(allowed_engine core formats arch kernels runtime tokenizer engine)
set(allowed_convert core formats arch kernels convert)
set(allowed_hub core hub)
set(allowed_tools core formats arch kernels runtime tokenizer engine tools)
set(allowed_cli "")
set(allowed_server "")

set(violations "")
foreach(level core formats arch kernels runtime tokenizer engine convert hub tools cli server python)
  if(level STREQUAL "python")
    set(dir ${STRATA_SOURCE_DIR}/python/src)
    set(allowed "")
  else()
    set(dir ${STRATA_SOURCE_DIR}/src/${level})
    set(allowed ${allowed_${level}})
  endif()
  file(GLOB_RECURSE files ${dir}/*.cpp ${dir}/*.h)
  foreach(f ${files})
    file(STRINGS ${f} lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
    foreach(line ${lines})
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]*)\".*" "\\1" inc "${line}")
      if(inc MATCHES "^\\.\\./")
        list(APPEND violations "${f}: #include \"${inc}\" (a relative path out of its folder)")
        continue()
      endif()
      if(NOT inc MATCHES "/")
        continue()  # a header of the file's own folder, by bare name
      endif()
      string(REGEX REPLACE "/.*" "" top "${inc}")
      if(top STREQUAL "strata")
        continue()
      endif()
      list(FIND allowed ${top} i)
      if(i EQUAL -1)
        list(APPEND violations "${f}: #include \"${inc}\" (${level}/ may include ${allowed} strata)")
      endif()
    endforeach()
  endforeach()
endforeach()

if(violations)
  list(JOIN violations "\n" text)
  message(FATAL_ERROR "includes across the levels of DESIGN.md:\n${text}")
endif()
message(STATUS "levels: every include follows DESIGN.md")
