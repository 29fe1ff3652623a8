// The master asks its authorizer (the --authorizers module) before the decisions Mesos's ACLs
// cover. The authorizer runs on its own executor and answers from any thread; answers hop back
// to the strand, so nothing on the strand waits for it.
#include "kernel/http/authorization.h"

#include <cctype>

#include "kernel/master/master_util.h"
#include "kernel/net/http_server.h"

namespace tessera::kernel::master {

using namespace detail;

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

void Core::authorize(std::vector<api::AuthorizationRequest> requests,
                     std::function<void(Core&, std::vector<bool>)> then) {
  if (services.authorizer == nullptr || requests.empty()) {
    return then(*this, std::vector<bool>(requests.size(), true));
  }
  // The answers come from the authorizer's threads (kernel/http/authorization.h); they hop
  // to the strand, where the denials are counted.
  std::vector<std::string> actions;
  for (const auto& request : requests) actions.push_back(lower(request.action));
  std::weak_ptr<Core> weak = weak_from_this();
  runtime::StrandExecutor* executor = strand.get();
  http::askAuthorizer(
      http::AuthorizerRef{services.authorizer, services.authorizerExecutor}, std::move(requests),
      "master",
      [weak, executor, actions = std::move(actions),
       then = std::move(then)](std::vector<bool> answers) mutable {
        if (!weak.lock()) return;
        executor->post(guarded(weak, [actions = std::move(actions), then = std::move(then),
                                      answers = std::move(answers)](Core& core) mutable {
          for (size_t j = 0; j < answers.size(); ++j) {
            if (answers[j]) continue;
            core.counter("authorization/denied").increment();
            core.counter("authorization/denied/" + actions[j]).increment();
          }
          core.counter("authorization/asked").increment(answers.size());
          then(core, std::move(answers));
        }));
      });
}

void Core::authorizeAll(std::vector<api::AuthorizationRequest> requests,
                        std::function<void(Core&, std::optional<std::string>)> then) {
  std::vector<std::string> refusals;
  for (const auto& request : requests) refusals.push_back(http::refusalMessage(request));
  authorize(std::move(requests), [refusals = std::move(refusals), then = std::move(then)](
                                     Core& core, std::vector<bool> answers) {
    for (size_t i = 0; i < answers.size(); ++i) {
      if (!answers[i]) return then(core, refusals[i]);
    }
    then(core, std::nullopt);
  });
}

void Core::authorizeOne(api::AuthorizationRequest request,
                        std::function<void(Core&, std::optional<std::string>)> then) {
  std::vector<api::AuthorizationRequest> requests;
  requests.push_back(std::move(request));
  authorizeAll(std::move(requests), std::move(then));
}

std::string Core::userOf(const TaskEntry& task) const {
  if (task.info.has_command() && task.info.command().has_user()) {
    return task.info.command().user();
  }
  if (auto framework = frameworks.find(task.frameworkId); framework != frameworks.end()) {
    return framework->second.info.user();
  }
  for (const auto& framework : completedFrameworks) {
    if (framework.id == task.frameworkId) return framework.info.user();
  }
  return {};
}

bool Core::visible(const FrameworkEntry& framework) const {
  return view == nullptr || view->frameworkUsers.count(framework.info.user()) > 0;
}

bool Core::visible(const TaskEntry& task) const {
  return view == nullptr || view->taskUsers.count(userOf(task)) > 0;
}

void Core::renderFiltered(const api::HttpRequest& request,
                          std::function<std::string(const Core&)> render,
                          api::HttpResponder respond) {
  if (services.authorizer == nullptr) return respond(api::HttpResponse::json(200, render(*this)));
  std::optional<std::string> principal = request.header(net::kAuthenticatedPrincipalHeader);
  // One question per user seen now; what appears meanwhile is hidden (not asked about).
  std::set<std::string> frameworkUsers, taskUsers;
  for (const auto& [id, framework] : frameworks) frameworkUsers.insert(framework.info.user());
  for (const auto& framework : completedFrameworks) frameworkUsers.insert(framework.info.user());
  for (const auto& [key, task] : tasks) taskUsers.insert(userOf(task));
  for (const auto& [id, framework] : frameworks) {
    for (const auto& task : framework.completedTasks) taskUsers.insert(userOf(task));
  }
  for (const auto& framework : completedFrameworks) {
    for (const auto& task : framework.completedTasks) taskUsers.insert(userOf(task));
  }
  std::vector<api::AuthorizationRequest> requests;
  auto ask = [&](std::string action, std::optional<std::string> value) {
    api::AuthorizationRequest question;
    question.subject = principal;
    question.action = std::move(action);
    question.value = std::move(value);
    requests.push_back(std::move(question));
  };
  ask("VIEW_FLAGS", std::nullopt);
  for (const auto& user : frameworkUsers) ask("VIEW_FRAMEWORK", user);
  for (const auto& user : taskUsers) ask("VIEW_TASK", user);
  authorize(
      std::move(requests),
      [frameworkUsers = std::vector<std::string>(frameworkUsers.begin(), frameworkUsers.end()),
       taskUsers = std::vector<std::string>(taskUsers.begin(), taskUsers.end()),
       render = std::move(render),
       respond = std::move(respond)](Core& core, std::vector<bool> answers) {
        ViewFilter filter;
        size_t next = 0;
        filter.flags = answers[next++];
        for (const auto& user : frameworkUsers) {
          if (answers[next++]) filter.frameworkUsers.insert(user);
        }
        for (const auto& user : taskUsers) {
          if (answers[next++]) filter.taskUsers.insert(user);
        }
        core.view = &filter;
        std::string body = render(core);
        core.view = nullptr;
        respond(api::HttpResponse::json(200, std::move(body)));
      });
}

}  // namespace tessera::kernel::master
