#pragma once

/// The build fingerprint: what must match between the kernel and a module for C++ objects to
/// cross between them safely. Expanded in the module's own translation unit, so it records
/// how the MODULE was built; the kernel compares it byte for byte with its own.

#include <google/protobuf/stubs/common.h>

#include <boost/version.hpp>

#define TESSERA_FP_STR2(x) #x
#define TESSERA_FP_STR(x) TESSERA_FP_STR2(x)

#if defined(__clang__)
#define TESSERA_FP_COMPILER "clang-" __clang_version__
#elif defined(__GNUC__)
#define TESSERA_FP_COMPILER "gcc-" TESSERA_FP_STR(__GNUC__) "." TESSERA_FP_STR(__GNUC_MINOR__)
#else
#define TESSERA_FP_COMPILER "unknown"
#endif

/// "compiler=gcc-12.2;cxx=202002;cxx11abi=1;boost=107400;protobuf=3021012": fields separated
/// by ';' so a mismatch can be reported field by field.
#define TESSERA_BUILD_FINGERPRINT                                                                  \
  "compiler=" TESSERA_FP_COMPILER ";cxx=" TESSERA_FP_STR(__cplusplus) ";cxx11abi=" TESSERA_FP_STR( \
      _GLIBCXX_USE_CXX11_ABI) ";boost=" TESSERA_FP_STR(BOOST_VERSION) ";protobuf=" TESSERA_FP_STR(GOOGLE_PROTOBUF_VERSION)
