// A vendor module in one file: an anonymous module that serves GET /acme/hello with the
// `greeting` parameter from modules.json and counts its calls in acme/hello_requests.
#include <tessera/api/anonymous.h>
#include <tessera/api/json.h>

#include <boost/dll/alias.hpp>

namespace {

class Hello final : public tessera::api::Anonymous {
 public:
  Hello(std::string greeting, tessera::api::Counter& requests)
      : greeting_(std::move(greeting)), requests_(requests) {}
  void stop() override {}

  void serve(const tessera::api::HttpRequest&, tessera::api::HttpResponder respond) {
    requests_.increment();
    respond(tessera::api::HttpResponse::json(
        200, "{\"greeting\": " + tessera::api::jsonQuote(greeting_) + "}"));
  }

 private:
  std::string greeting_;
  tessera::api::Counter& requests_;
};

tessera::api::Result<std::unique_ptr<tessera::api::Module>> create(
    const tessera::api::Parameters& parameters, tessera::api::Context& context) {
  auto greeting = parameters.getOr("greeting", "hello");
  auto module = std::make_unique<Hello>(greeting, context.metrics().counter("acme/hello_requests"));
  auto* raw = module.get();
  auto routed = context.http().addRoute(
      "GET", "/acme/hello",
      [raw](const tessera::api::HttpRequest& request, tessera::api::HttpResponder respond) {
        raw->serve(request, std::move(respond));
      });
  if (!routed) return routed;
  context.logger().info("acme hello module ready, greeting '{}'", greeting);
  return std::unique_ptr<tessera::api::Module>(std::move(module));
}

}  // namespace

const tessera::api::ModuleDescriptor kDescriptor{tessera::api::kApiVersion,
                                                 TESSERA_BUILD_FINGERPRINT,
                                                 "anonymous",
                                                 "com_acme_hello",
                                                 "serves GET /acme/hello",
                                                 "ACME Corp.",
                                                 &create};
BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
