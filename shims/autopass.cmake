# autopass-cc CMake toolchain file: compile C and C++ through autopass-cc / autopass-c++.
#
#   cmake -S . -B build -DCMAKE_TOOLCHAIN_FILE=<autopass-cc checkout>/shims/autopass.cmake
#
# It only chooses the compilers (no CMAKE_SYSTEM_NAME: this is not a cross build).  autopass-cc
# then runs the real clang itself: `compiler` / `cxx_compiler` in autopass.toml, else AUTOPASS_CC /
# AUTOPASS_CXX in the environment of the build (configure and `make` alike), else clang-19 /
# clang++-19 from PATH.  The project (autopass.toml, .autopass/buildlog.jsonl) is found by walking
# up from the build directory, so a build tree inside the project records its compiles there.
#
# Where the wrappers are looked for, first hit wins:
#   1. -DAUTOPASS_CC_EXECUTABLE=... / -DAUTOPASS_CXX_EXECUTABLE=... (or the same environment variables);
#   2. <this directory>/bin/autopass-cc and autopass-c++ (links written by install.sh);
#   3. autopass-cc / autopass-c++ in PATH.
#
# The alternative without a toolchain file is a compiler launcher: CMake then runs
# `autopass-cc /usr/bin/clang-19 ARGS` for every compile (CMake's own compiler checks go to the
# compiler directly).  Links go through a launcher only when a linker launcher is set too (CMake
# >= 3.21); without one a tuning session finds no link of the target in the build log:
#
#   cmake -S . -B build -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 \
#         -DCMAKE_C_COMPILER_LAUNCHER=autopass-cc -DCMAKE_CXX_COMPILER_LAUNCHER=autopass-c++ \
#         -DCMAKE_C_LINKER_LAUNCHER=autopass-cc -DCMAKE_CXX_LINKER_LAUNCHER=autopass-c++
#
# With a launcher and a compiler that is not clang (CMake's default `cc` is often gcc), every call
# passes through to that compiler unchanged.

foreach(_autopass_lang C CXX)
  if(_autopass_lang STREQUAL "C")
    set(_autopass_name autopass-cc)
    set(_autopass_var AUTOPASS_CC_EXECUTABLE)
  else()
    set(_autopass_name autopass-c++)
    set(_autopass_var AUTOPASS_CXX_EXECUTABLE)
  endif()

  if(NOT ${_autopass_var} AND DEFINED ENV{${_autopass_var}})
    set(${_autopass_var} "$ENV{${_autopass_var}}")
  endif()
  if(NOT ${_autopass_var} AND EXISTS "${CMAKE_CURRENT_LIST_DIR}/bin/${_autopass_name}")
    set(${_autopass_var} "${CMAKE_CURRENT_LIST_DIR}/bin/${_autopass_name}")
  endif()
  if(NOT ${_autopass_var})
    find_program(${_autopass_var} NAMES ${_autopass_name})
  endif()
  if(NOT ${_autopass_var})
    message(FATAL_ERROR
      "autopass.cmake: ${_autopass_name} not found (looked in ${CMAKE_CURRENT_LIST_DIR}/bin and PATH); "
      "run ./install.sh or pass -D${_autopass_var}=/path/to/${_autopass_name}")
  endif()
endforeach()

set(CMAKE_C_COMPILER "${AUTOPASS_CC_EXECUTABLE}")
set(CMAKE_CXX_COMPILER "${AUTOPASS_CXX_EXECUTABLE}")
# try_compile() projects read this file again; hand them the same choice.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES AUTOPASS_CC_EXECUTABLE AUTOPASS_CXX_EXECUTABLE)

# The binutils CMake would pick for the real compiler.  CMake derives a "toolchain prefix" from the
# compiler's file name (Modules/CMakeDetermineCompiler.cmake: "autopass-cc" reads as prefix
# "autopass-" + "cc") and then looks for autopass-llvm-ar-19, finds nothing versioned and falls back
# to an unversioned llvm-ar, which may be an older LLVM (on Debian 12, /usr/bin/llvm-ar is LLVM 14):
# CMAKE_C_COMPILER_AR was NOTFOUND and -DCMAKE_INTERPROCEDURAL_OPTIMIZATION=ON builds failed to
# archive.  So look the tools up the way Modules/CMakeFindBinUtils.cmake and
# Compiler/Clang-FindBinUtils.cmake do for the real compiler (AUTOPASS_CC, else clang-19, else clang):
# its version suffix first ("-19"), then the plain name, hinted by the directory it really lives in.
# A variable the user sets (-DCMAKE_AR=...) is kept: find_program leaves a set cache entry alone.
if(DEFINED ENV{AUTOPASS_CC} AND NOT "$ENV{AUTOPASS_CC}" STREQUAL "")
  find_program(_autopass_real NAMES "$ENV{AUTOPASS_CC}")
else()
  find_program(_autopass_real NAMES clang-19 clang)
endif()
if(_autopass_real)
  get_filename_component(_autopass_real_dir "${_autopass_real}" REALPATH)
  get_filename_component(_autopass_real_dir "${_autopass_real_dir}" DIRECTORY)
  get_filename_component(_autopass_real_name "${_autopass_real}" NAME)
  set(_autopass_suffix "")
  if(_autopass_real_name MATCHES "^clang(\\+\\+)?(-[0-9.]+)$")
    set(_autopass_suffix "${CMAKE_MATCH_2}")
  endif()
  foreach(_autopass_pair AR=llvm-ar RANLIB=llvm-ranlib NM=llvm-nm OBJCOPY=llvm-objcopy OBJDUMP=llvm-objdump
          READELF=llvm-readelf STRIP=llvm-strip ADDR2LINE=llvm-addr2line DLLTOOL=llvm-dlltool LINKER=ld.lld
          C_COMPILER_AR=llvm-ar CXX_COMPILER_AR=llvm-ar C_COMPILER_RANLIB=llvm-ranlib CXX_COMPILER_RANLIB=llvm-ranlib)
    string(REPLACE "=" ";" _autopass_pair "${_autopass_pair}")
    list(GET _autopass_pair 0 _autopass_var)
    list(GET _autopass_pair 1 _autopass_tool)
    find_program(CMAKE_${_autopass_var} NAMES "${_autopass_tool}${_autopass_suffix}" "${_autopass_tool}"
                 HINTS "${_autopass_real_dir}" NO_CMAKE_PATH NO_CMAKE_ENVIRONMENT_PATH)
  endforeach()
endif()

unset(_autopass_lang)
unset(_autopass_name)
unset(_autopass_var)
unset(_autopass_tool)
unset(_autopass_pair)
unset(_autopass_suffix)
unset(_autopass_real_dir)
unset(_autopass_real_name)
unset(_autopass_real CACHE)  # (find_program's result is a cache entry: not one for the user's cache)
