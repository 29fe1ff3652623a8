#include "kernel/modules/module_host.h"

#include <fmt/format.h>

namespace tessera::kernel::modules {

namespace {

class ContextImpl final : public api::Context {
 public:
  ContextImpl(const HostServices& services, const InstanceOptions& options, std::string_view name,
              runtime::StrandExecutor& executor)
      : services_(services),
        logger_(name),
        executor_(executor),
        metrics_(services.metricsFor(executor)),
        router_(options.routerFor ? options.routerFor(executor) : services.routerFor(executor)),
        state_(options.state != nullptr ? options.state : services.state) {}

  api::Logger& logger() override { return logger_; }
  api::Metrics& metrics() override { return *metrics_; }
  api::Executor& executor() override { return executor_; }
  api::HttpRouter& http() override { return *router_; }
  std::string_view role() const override { return services_.role; }
  std::string_view workDir() const override { return services_.workDir; }
  api::StateStore& state() override { return *state_; }

  /// Removes the instance's routes and ends its open streams, on its executor, before the
  /// instance is destroyed: a request or stream callback already queued there then finds no
  /// module to reach. Context::http() must not be used afterwards.
  void closeHttp() { router_.reset(); }

 private:
  const HostServices& services_;
  runtime::SpdLogger logger_;
  runtime::StrandExecutor& executor_;
  std::unique_ptr<api::Metrics> metrics_;
  std::unique_ptr<api::HttpRouter> router_;
  api::StateStore* state_;
};

}  // namespace

struct ModuleHost::Instance {
  std::string name;
  std::unique_ptr<runtime::StrandExecutor> executor;
  std::unique_ptr<ContextImpl> context;
  std::unique_ptr<api::Module> module;
  std::vector<std::function<void()>> stopHooks;
};

ModuleHost::ModuleHost(const ModuleManager& manager, HostServices services)
    : manager_(manager), services_(std::move(services)) {}

ModuleHost::~ModuleHost() { stopAll(); }

api::Status ModuleHost::startAutomatic() {
  for (const auto& module : manager_.modules()) {
    if (module.kind != api::kKindAnonymous && module.kind != api::kKindHook) continue;
    auto made = create(module.name, module.kind);
    if (!made) return made.status();
  }
  return api::Status::ok();
}

api::Result<api::Module*> ModuleHost::create(
    std::string_view name, std::string_view kind,
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  InstanceOptions options;
  options.overrides = overrides;
  return create(name, kind, std::move(options));
}

api::Result<api::Module*> ModuleHost::create(std::string_view name, std::string_view kind,
                                             InstanceOptions options) {
  auto instance = std::make_unique<Instance>();
  instance->name = std::string(name);
  instance->executor = services_.runtime->makeExecutor();
  instance->context = std::make_unique<ContextImpl>(services_, options, name, *instance->executor);
  // The factory runs on the instance's own strand, as every later call into it does.
  auto made = instance->executor->call(
      [&] { return manager_.create(name, kind, *instance->context, options.overrides); });
  if (!made) return made.status();
  instance->module = std::move(made).value();
  api::Module* pointer = instance->module.get();
  instances_.push_back(std::move(instance));
  return pointer;
}

api::Executor* ModuleHost::executorOf(const api::Module* module) const {
  for (const auto& instance : instances_) {
    if (instance->module.get() == module) return instance->executor.get();
  }
  return nullptr;
}

api::Status ModuleHost::addStopHook(const api::Module* module, std::function<void()> hook) {
  for (const auto& instance : instances_) {
    if (instance->module.get() == module) {
      instance->stopHooks.push_back(std::move(hook));
      return api::Status::ok();
    }
  }
  return api::notFound("no such module instance");
}

std::vector<std::string> ModuleHost::reloadAll() {
  std::vector<std::string> refused;
  for (const auto& instance : instances_) {
    api::Status reloaded = instance->executor->call([&] { return instance->module->reload(); });
    if (!reloaded)
      refused.push_back(fmt::format("module '{}': {}", instance->name, reloaded.message()));
  }
  reloads_.fetch_add(1, std::memory_order_acq_rel);
  return refused;
}

void ModuleHost::stopAll() {
  while (!instances_.empty()) {
    auto instance = std::move(instances_.back());
    instances_.pop_back();
    instance->executor->call([&] {
      for (auto& hook : instance->stopHooks) hook();
      instance->module->stop();
      instance->context->closeHttp();
      instance->module.reset();
      return 0;
    });
    instance->executor->drain();
    instance->context.reset();    // unregisters its gauges
    instance->stopHooks.clear();  // what they hold outlived the instance
  }
}

}  // namespace tessera::kernel::modules
