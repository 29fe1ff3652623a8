// The pod store and the pods' life with the leader: read at start, written before the API
// answers, handed to the PodScheduler.
#include "modules/framework_marathon/pod_service.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "tessera/api/logger.h"

namespace tessera::modules::marathon {

namespace {

constexpr std::string_view kPodsKey = "/modules/org_tessera_marathon/pods";
constexpr size_t kMaxPodVersions = 50;  // as for apps (Marathon's --max_versions)

std::string podKey(std::string_view podId) {
  std::string name(podId.substr(1));
  std::replace(name.begin(), name.end(), '/', '_');
  return fmt::format("{}/{}", kPodsKey, name);
}

std::string jsonText(const Poco::Dynamic::Var& value) {
  std::ostringstream out;
  Poco::JSON::Stringifier::stringify(value, out);
  return out.str();
}

}  // namespace

PodService::PodService(api::Context& context, PodScheduler::Options options,
                       std::function<bool(const std::string&)> appExists)
    : context_(context),
      scheduler_(std::make_unique<PodScheduler>(context, std::move(options))),
      appExists_(std::move(appExists)) {}

PodService::~PodService() { *alive_ = false; }

void PodService::load(std::function<void()> done) {
  std::weak_ptr<bool> alive = alive_;
  auto live = [alive] { return !alive.expired() && *alive.lock(); };
  auto retry = [this, live, done](const api::Status& status) {
    context_.logger().log(
        api::Logger::Level::kError,
        fmt::format("cannot read the pods (retrying in 1s): {}", status.message()));
    retry_ = context_.executor().schedule(std::chrono::seconds(1), [this, live, done] {
      if (live()) load(done);
    });
  };
  context_.state().children(
      kPodsKey, context_.executor(),
      [this, live, done, retry](api::Result<std::vector<std::string>> names) {
        if (!live()) return;
        if (!names) return retry(names.status());
        auto pending = std::make_shared<size_t>(names->size());
        auto failed = std::make_shared<std::optional<api::Status>>();
        auto read = std::make_shared<std::map<std::string, Record>>();
        if (names->empty()) return done();
        for (const auto& name : *names) {
          context_.state().get(
              fmt::format("{}/{}", kPodsKey, name), context_.executor(),
              [this, live, done, retry, pending, failed, read,
               name](api::Result<std::optional<api::StateEntry>> entry) {
                if (!live()) return;
                if (!entry) *failed = entry.status();
                if (entry && *entry) {
                  try {
                    auto object = Poco::JSON::Parser()
                                      .parse((*entry)->value)
                                      .extract<Poco::JSON::Object::Ptr>();
                    if (auto current = podFromJson(jsonText(object->get("current")))) {
                      Record record{*current, {}, (*entry)->version};
                      if (auto versions = object->getArray("versions")) {
                        for (size_t i = 0; i < versions->size(); ++i) {
                          if (auto pod = podFromJson(jsonText(versions->get(i)))) {
                            record.versions.push_back(*pod);
                          }
                        }
                      }
                      (*read)[current->id] = std::move(record);
                    }
                  } catch (const Poco::Exception& e) {
                    context_.logger().log(api::Logger::Level::kError,
                                          fmt::format("unreadable pod '{}': {}", name, e.what()));
                  }
                }
                if (--*pending > 0) return;
                if (*failed) return retry(**failed);
                pods_ = std::move(*read);
                done();
              });
        }
      });
}

void PodService::start(api::SchedulerDriver& driver) {
  std::vector<Pod> pods;
  for (const auto& [id, record] : pods_) pods.push_back(record.current);
  scheduler_->start(driver, std::move(pods));
  ready_ = true;
}

void PodService::stop() {
  *alive_ = false;
  alive_ = std::make_shared<bool>(true);  // a later leadership loads again
  if (retry_) retry_->cancel();
  scheduler_->stop();
  ready_ = false;
}

void PodService::persist(const Pod& pod, std::function<void(api::Status)> done) {
  Record& record = pods_[pod.id];
  if (record.versions.empty() || record.versions.front().version != pod.version) {
    record.versions.insert(record.versions.begin(), pod);
    if (record.versions.size() > kMaxPodVersions) record.versions.resize(kMaxPodVersions);
  }
  record.current = pod;
  std::string value = fmt::format(R"({{"current":{},"versions":[)", podToJson(pod));
  for (size_t i = 0; i < record.versions.size(); ++i) {
    if (i > 0) value += ",";
    value += podToJson(record.versions[i]);
  }
  value += "]}";
  std::weak_ptr<bool> alive = alive_;
  const std::string id = pod.id;
  context_.state().set(podKey(id), std::move(value), record.storeVersion, context_.executor(),
                       [this, alive, id, done](api::Result<uint64_t> written) {
                         if (alive.expired() || !*alive.lock()) return;
                         if (!written) return done(written.status());
                         if (auto it = pods_.find(id); it != pods_.end()) {
                           it->second.storeVersion = *written;
                         }
                         done(api::Status::ok());
                       });
}

void PodService::forget(const std::string& id, std::function<void(api::Status)> done) {
  auto it = pods_.find(id);
  if (it == pods_.end()) return done(api::Status::ok());
  const uint64_t version = it->second.storeVersion;
  pods_.erase(it);
  if (version == 0) return done(api::Status::ok());
  std::weak_ptr<bool> alive = alive_;
  context_.state().remove(podKey(id), version, context_.executor(),
                          [alive, done](api::Status status) {
                            if (alive.expired() || !*alive.lock()) return;
                            done(status);
                          });
}

}  // namespace tessera::modules::marathon
