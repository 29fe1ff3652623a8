#include "modules/framework_marathon/deployment_store.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>

#include <sstream>

#include "tessera/api/json.h"

namespace tessera::modules::marathon {

namespace {

using api::jsonQuote;
using Poco::JSON::Array;
using Poco::JSON::Object;

std::string appsJson(const std::vector<App>& apps) {
  std::string out = "[";
  for (size_t i = 0; i < apps.size(); ++i) {
    if (i > 0) out += ",";
    out += appToJson(apps[i]);
  }
  return out + "]";
}

std::string stringsJson(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ",";
    out += jsonQuote(items[i]);
  }
  return out + "]";
}

std::string text(const Poco::Dynamic::Var& value) {
  std::ostringstream out;
  Poco::JSON::Stringifier::stringify(value, out);
  return out.str();
}

std::vector<std::string> strings(const Array::Ptr& array) {
  std::vector<std::string> out;
  for (size_t i = 0; array && i < array->size(); ++i)
    out.push_back(array->getElement<std::string>(i));
  return out;
}

// Apps as stored: appFromJson keeps each one's version.
std::optional<std::vector<App>> apps(const Array::Ptr& array) {
  std::vector<App> out;
  for (size_t i = 0; array && i < array->size(); ++i) {
    auto app = appFromJson(text(array->get(i)));
    if (!app) return std::nullopt;
    out.push_back(std::move(*app));
  }
  return out;
}

}  // namespace

std::string deploymentToStoreJson(const Deployment& deployment) {
  std::string steps = "[";
  for (size_t i = 0; i < deployment.steps.size(); ++i) {
    if (i > 0) steps += ",";
    steps += "[";
    for (size_t j = 0; j < deployment.steps[i].size(); ++j) {
      steps += fmt::format(R"({}{{"action":{},"app":{}}})", j > 0 ? "," : "",
                           jsonQuote(deployment.steps[i][j].action),
                           jsonQuote(deployment.steps[i][j].app));
    }
    steps += "]";
  }
  steps += "]";
  return fmt::format(R"({{"id":{},"version":{},"affectedApps":{},"steps":{},"currentStep":{},)"
                     R"("original":{},"target":{},"removed":{}}})",
                     jsonQuote(deployment.id), jsonQuote(isoTimestamp(deployment.version)),
                     stringsJson(deployment.affectedApps), steps, deployment.currentStep,
                     appsJson(deployment.original), appsJson(deployment.target),
                     stringsJson(deployment.removed));
}

std::optional<Deployment> deploymentFromStoreJson(std::string_view json) {
  try {
    auto object = Poco::JSON::Parser().parse(std::string(json)).extract<Object::Ptr>();
    Deployment deployment;
    deployment.id = object->getValue<std::string>("id");
    auto version = parseIsoTimestamp(object->getValue<std::string>("version"));
    if (deployment.id.empty() || !version) return std::nullopt;
    deployment.version = *version;
    deployment.affectedApps = strings(object->getArray("affectedApps"));
    if (auto steps = object->getArray("steps")) {
      for (size_t i = 0; i < steps->size(); ++i) {
        std::vector<DeploymentAction> actions;
        auto list = steps->getArray(i);
        for (size_t j = 0; list && j < list->size(); ++j) {
          auto action = list->getObject(j);
          if (!action) return std::nullopt;
          actions.push_back(
              {action->getValue<std::string>("action"), action->getValue<std::string>("app")});
        }
        deployment.steps.push_back(std::move(actions));
      }
    }
    deployment.currentStep = object->getValue<int>("currentStep");
    auto original = apps(object->getArray("original"));
    auto target = apps(object->getArray("target"));
    if (!original || !target) return std::nullopt;
    deployment.original = std::move(*original);
    deployment.target = std::move(*target);
    deployment.removed = strings(object->getArray("removed"));
    return deployment;
  } catch (const Poco::Exception&) {
    return std::nullopt;
  }
}

}  // namespace tessera::modules::marathon
