// One source, many libraries: each TEST_MODULE_VARIANT builds a module library with one thing
// wrong (or nothing, for "good"), so the loader's error for each case is tested against a real
// .so file (as Ceph's erasure-code plugin tests do).
#include <boost/dll/alias.hpp>
#include <stdexcept>

#include "tessera/api/anonymous.h"
#include "tessera/api/module.h"

#define VARIANT_GOOD 1
#define VARIANT_NO_SYMBOL 2
#define VARIANT_API_VERSION 3
#define VARIANT_FINGERPRINT 4
#define VARIANT_KIND 5
#define VARIANT_DUPLICATE 6
#define VARIANT_FACTORY_ERROR 7
#define VARIANT_FACTORY_THROWS 8

namespace {

using tessera::api::Context;
using tessera::api::Module;
using tessera::api::Parameters;
using tessera::api::Result;

/// Answers GET /test/<name>/hello with its `greeting` parameter and counts the calls.
class HelloModule final : public tessera::api::Anonymous {
 public:
  HelloModule(const Parameters& parameters, Context& context)
      : greeting_(parameters.getOr("greeting", "hello")),
        calls_(context.metrics().counter("test/hello_calls")) {}

  tessera::api::Status init(Context& context, std::string_view name) {
    context.metrics().gauge("test/hello_alive", [] { return 1.0; });
    auto routed = context.http().addRoute(
        "GET", fmt::format("/test/{}/hello", name),
        [this](const tessera::api::HttpRequest&, tessera::api::HttpResponder respond) {
          calls_.increment();
          respond(tessera::api::HttpResponse::text(200, greeting_));
        });
    if (!routed) return routed;
    // GET /test/<name>/visits counts its calls in the state store (so the count survives a
    // restart of a daemon with a --work_dir) and answers the new count.
    std::string key = fmt::format("/modules/{}/visits", name);
    return context.http().addRoute(
        "GET", fmt::format("/test/{}/visits", name),
        [&context, key](const tessera::api::HttpRequest&, tessera::api::HttpResponder respond) {
          auto& executor = context.executor();
          context.state().get(key, executor, [&context, key, respond](auto entry) {
            if (!entry) return respond(tessera::api::HttpResponse::error(500, "get failed"));
            uint64_t count = *entry ? std::stoull((**entry).value) + 1 : 1;
            uint64_t version = *entry ? (**entry).version : 0;
            context.state().set(
                key, std::to_string(count), version, context.executor(),
                [respond, count](tessera::api::Result<uint64_t> set) {
                  if (!set) {
                    return respond(tessera::api::HttpResponse::error(409, set.status().message()));
                  }
                  respond(tessera::api::HttpResponse::text(200, std::to_string(count)));
                });
          });
        });
  }
  void stop() override {}

 private:
  std::string greeting_;
  tessera::api::Counter& calls_;
};

Result<std::unique_ptr<Module>> create(const Parameters& parameters, Context& context) {
#if TEST_MODULE_VARIANT == VARIANT_FACTORY_ERROR
  (void)parameters;
  (void)context;
  return tessera::api::invalidArgument("parameter 'size' is required");
#elif TEST_MODULE_VARIANT == VARIANT_FACTORY_THROWS
  (void)parameters;
  (void)context;
  throw std::runtime_error("out of widgets");
#else
  auto module = std::make_unique<HelloModule>(parameters, context);
  if (auto status = module->init(context, TEST_MODULE_NAME); !status) return status;
  return std::unique_ptr<Module>(std::move(module));
#endif
}

#if TEST_MODULE_VARIANT == VARIANT_API_VERSION
[[maybe_unused]] constexpr uint32_t kVersion = tessera::api::kApiVersion + 98;
#else
[[maybe_unused]] constexpr uint32_t kVersion = tessera::api::kApiVersion;
#endif

#if TEST_MODULE_VARIANT == VARIANT_FINGERPRINT
// Everything as built, except the Boost version.
#undef BOOST_VERSION
#define BOOST_VERSION 999999
[[maybe_unused]] constexpr const char* kFingerprint = TESSERA_BUILD_FINGERPRINT;
#else
[[maybe_unused]] constexpr const char* kFingerprint = TESSERA_BUILD_FINGERPRINT;
#endif

#if TEST_MODULE_VARIANT == VARIANT_KIND
[[maybe_unused]] constexpr const char* kKind = "frobnicator";
#else
[[maybe_unused]] constexpr const char* kKind = "anonymous";
#endif

}  // namespace

#if TEST_MODULE_VARIANT != VARIANT_NO_SYMBOL
const tessera::api::ModuleDescriptor kDescriptor{
    kVersion,        kFingerprint, kKind, TEST_MODULE_NAME, "a module for the loader's tests",
    "Tessera tests", &create};
BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
#else
// Exports a factory, but no descriptor.
extern "C" __attribute__((visibility("default"))) void* tessera_module_factory() {
  return reinterpret_cast<void*>(&create);
}
#endif
