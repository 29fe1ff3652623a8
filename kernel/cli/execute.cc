#include "kernel/cli/execute.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <future>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "kernel/cli/common.h"
#include "kernel/cli/resolve.h"
#include "kernel/net/v1_json.h"
#include "kernel/runtime/duration.h"
#include "kernel/runtime/flags.h"
#include "kernel/runtime/logging.h"
#include "kernel/runtime/runtime.h"
#include "kernel/scheduler/driver.h"
#include "kernel/zookeeper/url.h"
#include "tessera/api/framework.h"
#include "tessera/api/resources.h"
#include "tessera/api/task_state.h"

namespace tessera::kernel::cli {

namespace {

using namespace std::chrono_literals;
using scheduler::HttpSchedulerDriver;

constexpr std::string_view kRole = "execute";

struct ExecuteFlags {
  std::string master;
  std::string name;
  std::string command;
  std::string resources = "cpus:0.1;mem:32";
  std::optional<std::string> env;
  std::optional<std::string> frameworkName;
  std::string role = "*";
  bool shell = true;
  runtime::Duration killAfter{0};
  std::optional<std::string> dockerImage;
  std::optional<std::string> container;
  bool checkpoint = false;
  runtime::Duration connectTimeout = 10s;
  std::optional<std::string> principal;
  std::optional<std::string> secret;
  std::optional<std::string> task;       // a whole v1 TaskInfo (JSON, or file:// its path)
  std::optional<std::string> taskGroup;  // a v1 TaskGroupInfo (JSON, or file:// its path)
};

// The flags that describe the task piece by piece, which --task replaces.
constexpr std::string_view kTaskPieces[] = {"name",         "command",   "resources", "env",
                                            "docker_image", "container", "shell"};

std::string timestamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string currentUser() {
  if (const char* user = std::getenv("USER"); user != nullptr && *user != '\0') return user;
  if (const passwd* pw = getpwuid(getuid()); pw != nullptr) return pw->pw_name;
  return "root";
}

using api::isTerminal;

// The exit code a terminal state stands for.
int exitCodeOf(const v1::TaskStatus& status) {
  if (status.state() == v1::TASK_FINISHED) return 0;
  if (status.state() == v1::TASK_FAILED) {
    constexpr std::string_view kMarker = "exited with status ";
    const std::string& message = status.message();
    size_t at = message.find(kMarker);
    if (at != std::string::npos) {
      int code = 0;
      size_t i = at + kMarker.size();
      size_t digits = 0;
      while (i < message.size() && std::isdigit(static_cast<unsigned char>(message[i])) &&
             digits < 4) {
        code = code * 10 + (message[i] - '0');
        ++i;
        ++digits;
      }
      if (digits > 0 && code > 0 && code < 256) return code;
    }
  }
  return 1;
}

// Parses --env: a JSON object of strings.
api::Result<v1::Environment> parseEnvironment(const std::string& text) {
  v1::Environment environment;
  try {
    Poco::JSON::Parser parser;
    auto parsed = parser.parse(text);
    if (parsed.type() != typeid(Poco::JSON::Object::Ptr)) {
      return api::invalidArgument("flag '--env': expected a JSON object of strings");
    }
    auto object = parsed.extract<Poco::JSON::Object::Ptr>();
    for (const auto& [key, value] : *object) {
      if (!value.isString()) {
        return api::invalidArgument("flag '--env': the value of '{}' is not a string", key);
      }
      auto* variable = environment.add_variables();
      variable->set_name(key);
      variable->set_type(v1::Environment::Variable::VALUE);
      variable->set_value(value.extract<std::string>());
    }
  } catch (const Poco::Exception& e) {
    return api::invalidArgument("flag '--env': not JSON: {}", e.displayText());
  }
  return environment;
}

// The task that --name, --command, --resources, --env, --shell, --docker_image and --container
// describe. Errors: InvalidArgument naming the flag.
api::Result<v1::TaskInfo> taskFromFlags(const ExecuteFlags& f) {
  v1::TaskInfo task;
  task.set_name(f.name);
  task.mutable_task_id()->set_value(f.name);
  auto resources = api::Resources::parse(f.resources);
  if (!resources) {
    return api::invalidArgument("flag '--resources': {}", resources.status().message());
  }
  *task.mutable_resources() = resources->toProto();
  auto* command = task.mutable_command();
  command->set_shell(f.shell);
  if (f.shell) {
    command->set_value(f.command);
  } else {
    std::istringstream words(f.command);
    std::string word;
    while (words >> word) command->add_arguments(word);
    if (command->arguments_size() > 0) command->set_value(command->arguments(0));
  }
  if (f.env) {
    auto environment = parseEnvironment(*f.env);
    if (!environment) return environment.status();
    *command->mutable_environment() = std::move(environment).value();
  }
  if (f.container || f.dockerImage) {
    v1::ContainerInfo container;
    if (f.container) {
      auto parsed = net::parseV1Json<v1::ContainerInfo>(*f.container);
      if (!parsed) return api::invalidArgument("flag '--container': {}", parsed.status().message());
      container = std::move(parsed).value();
    }
    if (f.dockerImage) {
      container.set_type(v1::ContainerInfo::DOCKER);
      container.mutable_docker()->set_image(*f.dockerImage);
      if (!container.docker().has_network()) {
        container.mutable_docker()->set_network(v1::ContainerInfo::DockerInfo::HOST);
      }
    }
    *task.mutable_container() = std::move(container);
  }
  return task;
}

// --task: a whole v1 TaskInfo (Mesos's field names; unknown ones are refused, so that a typo
// in, say, "health_check" is not silently dropped). Its agent_id comes from the offer.
// Errors: InvalidArgument naming '--task'.
api::Result<v1::TaskInfo> taskFromJson(const std::string& text) {
  net::V1JsonParseOptions options;
  options.rejectUnknownFields = true;
  auto task = net::parseV1Json<v1::TaskInfo>(text, options);
  if (!task) return api::invalidArgument("flag '--task': {}", task.status().message());
  if (task->name().empty()) return api::invalidArgument("flag '--task': the task has no 'name'");
  if (task->task_id().value().empty()) {
    return api::invalidArgument("flag '--task': the task has no 'task_id'");
  }
  if (!task->has_command() && !task->has_executor()) {
    return api::invalidArgument(
        "flag '--task': the task has neither a 'command' nor an 'executor'");
  }
  return task;
}

// --task_group: a v1 TaskGroupInfo (Mesos's field names, unknown ones refused), launched with a
// DEFAULT executor. Each task needs a name, a task_id and a command. Errors: InvalidArgument
// naming '--task_group'.
api::Result<v1::TaskGroupInfo> taskGroupFromJson(const std::string& text) {
  net::V1JsonParseOptions options;
  options.rejectUnknownFields = true;
  auto group = net::parseV1Json<v1::TaskGroupInfo>(text, options);
  if (!group) return api::invalidArgument("flag '--task_group': {}", group.status().message());
  if (group->tasks_size() == 0) {
    return api::invalidArgument("flag '--task_group': the task group has no 'tasks'");
  }
  for (int i = 0; i < group->tasks_size(); ++i) {
    const v1::TaskInfo& task = group->tasks(i);
    if (task.task_id().value().empty()) {
      return api::invalidArgument("flag '--task_group': tasks[{}] has no 'task_id'", i);
    }
    if (task.name().empty()) {
      group->mutable_tasks(i)->set_name(task.task_id().value());
    }
    if (!task.has_command()) {
      return api::invalidArgument("flag '--task_group': task '{}' has no 'command'",
                                  task.task_id().value());
    }
  }
  return group;
}

// The task to launch, from --task or from the flags that describe it piece by piece.
api::Result<v1::TaskInfo> describeTask(const ExecuteFlags& f, const runtime::FlagSet& flags) {
  auto given = [&flags](std::string_view name) {
    const runtime::Flag* flag = flags.find(name);
    return flag != nullptr && flag->source() != runtime::FlagSource::kDefault;
  };
  if (f.task) {
    for (std::string_view piece : kTaskPieces) {
      if (given(piece)) {
        return api::invalidArgument(
            "flags '--task' and '--{}' are mutually exclusive: '--task' gives the whole task",
            piece);
      }
    }
    return taskFromJson(*f.task);
  }
  for (std::string_view needed : {"name", "command"}) {
    if (!given(needed)) {
      return api::invalidArgument("flag '--{}' is required (or give the whole task with '--task')",
                                  needed);
    }
  }
  return taskFromFlags(f);
}

// The one-task framework; every method runs on the executor.
class ExecuteScheduler final : public api::Scheduler {
 public:
  // `task`: what is launched, with the offer's agent id and allocation added; `needed`: its
  // resources, which an offer must contain.
  // `group`: --task_group's tasks, launched together with a DEFAULT executor instead of `task`
  // (then the first of them).
  ExecuteScheduler(const ExecuteFlags& flags, v1::TaskInfo task, api::Resources needed,
                   api::Executor& executor, std::ostream& out, std::ostream& err,
                   std::optional<v1::TaskGroupInfo> group = std::nullopt)
      : flags_(flags),
        task_(std::move(task)),
        needed_(std::move(needed)),
        executor_(executor),
        out_(out),
        err_(err),
        group_(std::move(group)) {
    taskId_ = task_.task_id();
    if (group_) {
      for (const auto& member : group_->tasks()) taskIds_.push_back(member.task_id());
    } else {
      taskIds_.push_back(taskId_);
    }
  }

  void setDriver(HttpSchedulerDriver* driver) { driver_ = driver; }
  std::future<int> result() { return result_.get_future(); }

  void start() {
    v1::FrameworkInfo info;
    info.set_user(currentUser());
    info.set_name(flags_.frameworkName.value_or("tessera-execute"));
    info.add_roles(flags_.role);
    info.add_capabilities()->set_type(v1::FrameworkInfo::Capability::MULTI_ROLE);
    info.set_checkpoint(flags_.checkpoint);
    if (flags_.principal) info.set_principal(*flags_.principal);
    if (auto status = driver_->subscribe(std::move(info), {}); !status) {
      err_ << "tessera execute: " << status.message() << std::endl;
      return finish(1);
    }
    connectTimer_ = executor_.schedule(flags_.connectTimeout, [this] {
      if (everSubscribed_ || finished_) return;
      std::string reason = driver_->lastError();
      err_ << fmt::format("tessera execute: cannot reach the master at '{}' within {}{}{}",
                          flags_.master, runtime::formatDuration(flags_.connectTimeout),
                          reason.empty() ? "" : ": ", reason)
           << std::endl;
      finish(1);
    });
  }

  // SIGINT/SIGTERM: kill the task if it runs, tear down, exit.
  void interrupt(int signal) {
    int code = 128 + signal;
    out_ << timestamp() << " Received signal " << signal << ", killing task '" << task_.name()
         << "'" << std::endl;
    if (!driver_->subscribed()) return finish(code);
    auto teardown = [this, code] {
      driver_->teardown([this, code](api::Status) { finish(code); });
    };
    if (launched_ && agentId_) {
      // In a group the default executor's policy kills the others along with the first.
      driver_->kill(taskId_, agentId_, [teardown](api::Status) { teardown(); });
    } else {
      teardown();
    }
    // Give up waiting for the master after a while.
    giveUpTimer_ = executor_.schedule(5s, [this, code] { finish(code); });
  }

  void stopTimers() {
    if (connectTimer_) connectTimer_->cancel();
    if (killTimer_) killTimer_->cancel();
    if (giveUpTimer_) giveUpTimer_->cancel();
  }

  void subscribed(const v1::FrameworkID& frameworkId, std::chrono::nanoseconds,
                  const v1::MasterInfo&) override {
    everSubscribed_ = true;
    out_ << timestamp() << " Subscribed with ID '" << frameworkId.value() << "'" << std::endl;
  }

  void offers(std::vector<v1::Offer> offers) override {
    std::vector<v1::OfferID> unused;
    for (auto& offer : offers) {
      if (launched_ || finished_) {
        unused.push_back(offer.id());
        continue;
      }
      auto offered = api::Resources::fromProto(offer.resources());
      if (!offered || !offered->contains(needed_)) {
        unused.push_back(offer.id());
        continue;
      }
      launch(offer);
    }
    if (!unused.empty()) driver_->decline(std::move(unused), std::nullopt, nullptr);
  }

  void rescind(const v1::OfferID&) override {}

  void update(const v1::TaskStatus& status) override {
    std::string line = fmt::format("{} Received status update {} for task '{}'", timestamp(),
                                   v1::TaskState_Name(status.state()), status.task_id().value());
    if (!status.message().empty()) line += fmt::format(": {}", status.message());
    if (isTerminal(status.state()) && status.state() != v1::TASK_FINISHED && status.has_reason()) {
      line += fmt::format(" (reason: {})", v1::TaskStatus::Reason_Name(status.reason()));
    }
    out_ << line << std::endl;
    if (status.has_uuid()) {
      driver_->acknowledge(status.agent_id(), status.task_id(), status.uuid(), nullptr);
    }
    const bool ours = std::any_of(taskIds_.begin(), taskIds_.end(), [&](const v1::TaskID& id) {
      return id.value() == status.task_id().value();
    });
    if (!ours) return;
    if (status.state() == v1::TASK_RUNNING && flags_.killAfter.count() > 0 && !killTimer_) {
      killTimer_ = executor_.schedule(flags_.killAfter, [this] {
        out_ << timestamp() << " Killing task '" << task_.name() << "' after "
             << runtime::formatDuration(flags_.killAfter) << std::endl;
        driver_->kill(taskId_, agentId_, nullptr);
      });
    }
    if (isTerminal(status.state())) terminals_.emplace(status.task_id().value(), status);
    if (terminals_.size() == taskIds_.size() && !terminal_) {
      // Done when every task has ended: 0 when all finished, else the first other one's code.
      terminal_ = true;
      int code = 0;
      for (const auto& id : taskIds_) {
        if (code == 0) code = exitCodeOf(terminals_.at(id.value()));
      }
      driver_->teardown([this, code](api::Status) { finish(code); });
    }
  }

  void message(const v1::AgentID&, const v1::ExecutorID&, const std::string&) override {}
  void failure(const v1::AgentID&, const std::optional<v1::ExecutorID>&,
               std::optional<int>) override {}

  void error(std::string_view message) override {
    err_ << "tessera execute: " << message << std::endl;
    finish(1);
  }

  void disconnected() override {
    out_ << timestamp() << " Disconnected from the master; reconnecting" << std::endl;
  }

 private:
  void launch(const v1::Offer& offer) {
    launched_ = true;
    agentId_ = offer.agent_id();
    v1::TaskInfo task = task_;
    *task.mutable_agent_id() = offer.agent_id();
    // A multi-role framework says which of its roles the resources are used in (Mesos).
    std::optional<v1::Resource::AllocationInfo> allocation;
    if (offer.has_allocation_info()) allocation = offer.allocation_info();
    for (const auto& resource : offer.resources()) {
      if (!allocation && resource.has_allocation_info()) allocation = resource.allocation_info();
    }
    if (allocation) {
      for (auto& resource : *task.mutable_resources()) {
        *resource.mutable_allocation_info() = *allocation;
      }
    }
    v1::Offer::Operation operation;
    if (group_) {
      operation.set_type(v1::Offer::Operation::LAUNCH_GROUP);
      auto* launch = operation.mutable_launch_group();
      launch->mutable_executor()->set_type(v1::ExecutorInfo::DEFAULT);
      launch->mutable_executor()->mutable_executor_id()->set_value("default-executor");
      for (v1::TaskInfo member : group_->tasks()) {
        *member.mutable_agent_id() = offer.agent_id();
        if (allocation) {
          for (auto& resource : *member.mutable_resources()) {
            *resource.mutable_allocation_info() = *allocation;
          }
        }
        out_ << timestamp() << " Submitted task '" << member.name() << "' of the task group to "
             << "agent '" << offer.agent_id().value() << "'" << std::endl;
        *launch->mutable_task_group()->add_tasks() = std::move(member);
      }
    } else {
      operation.set_type(v1::Offer::Operation::LAUNCH);
      *operation.mutable_launch()->add_task_infos() = std::move(task);
      out_ << timestamp() << " Submitted task '" << task_.name() << "' to agent '"
           << offer.agent_id().value() << "'" << std::endl;
    }
    driver_->accept({offer.id()}, {std::move(operation)}, std::nullopt, [this](api::Status status) {
      if (status) return;
      err_ << "tessera execute: launching task '" << task_.name()
           << "' failed: " << status.message() << std::endl;
      driver_->teardown([this](api::Status) { finish(1); });
    });
    // One task only: no more offers.
    driver_->suppress({}, nullptr);
  }
  void finish(int code) {
    if (finished_) return;
    finished_ = true;
    result_.set_value(code);
  }

  const ExecuteFlags& flags_;
  const v1::TaskInfo task_;
  api::Resources needed_;
  api::Executor& executor_;
  std::ostream& out_;
  std::ostream& err_;
  HttpSchedulerDriver* driver_ = nullptr;
  std::promise<int> result_;
  v1::TaskID taskId_;
  std::optional<v1::AgentID> agentId_;
  bool everSubscribed_ = false;
  bool launched_ = false;
  bool terminal_ = false;
  bool finished_ = false;
  std::unique_ptr<api::TimerHandle> connectTimer_;
  std::unique_ptr<api::TimerHandle> killTimer_;
  std::unique_ptr<api::TimerHandle> giveUpTimer_;
  std::optional<v1::TaskGroupInfo> group_;
  std::vector<v1::TaskID> taskIds_;                  // every task launched (one, or the group)
  std::map<std::string, v1::TaskStatus> terminals_;  // their terminal updates, by task id
};

// Blocks SIGINT and SIGTERM in this thread (and the threads it starts) while alive, so that
// the command can wait for them; restores the old mask after.
class StopSignalMask {
 public:
  StopSignalMask() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~StopSignalMask() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  StopSignalMask(const StopSignalMask&) = delete;
  StopSignalMask& operator=(const StopSignalMask&) = delete;

  // A pending stop signal, waiting up to `timeout`; 0 if none came.
  int wait(std::chrono::milliseconds timeout) const {
    timespec ts{static_cast<time_t>(timeout.count() / 1000),
                static_cast<long>((timeout.count() % 1000) * 1000000)};
    int signal = sigtimedwait(&set_, nullptr, &ts);
    return signal > 0 ? signal : 0;
  }

 private:
  sigset_t set_;
  sigset_t old_;
};

}  // namespace

int runExecute(const std::vector<std::string>& args) {
  return runExecute(args, std::cout, std::cerr);
}

int runExecute(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  ExecuteFlags f;
  runtime::FlagSet flags;
  flags.add("master", &f.master, "The master, HOST:PORT or zk://host:port,.../path").required();
  flags.add("name", &f.name, "Name of the task (and its task id)");
  flags.add("command", &f.command, "The command to run");
  flags
      .add("task", &f.task,
           "The whole task, a v1 TaskInfo as JSON (or file:///path to it): name, task_id, "
           "resources, command, container, health_check, ...; its agent_id comes from the offer. "
           "Replaces --name, --command, --resources, --env, --shell, --docker_image, --container")
      .allowFile();
  flags
      .add("task_group", &f.taskGroup,
           "A task group, a v1 TaskGroupInfo as JSON (or file:///path to it), launched with a "
           "DEFAULT executor; exits 0 when every task finished. Replaces --task and the flags "
           "that describe one task")
      .allowFile();
  flags.add("resources", &f.resources, "Resources of the task, e.g. 'cpus:1;mem:128'");
  flags.add("env", &f.env, "Environment of the command, a JSON object of strings");
  flags.add("framework_name", &f.frameworkName, "Name of the framework (tessera-execute)");
  flags.add("role", &f.role, "Role the framework subscribes with");
  flags.add("shell", &f.shell, "Run the command under /bin/sh -c (else split on spaces)");
  flags.add("kill_after", &f.killAfter, "Kill the task this long after it runs (0: never)");
  flags.add("docker_image", &f.dockerImage,
            "Run the task in this Docker image (a DOCKER ContainerInfo, network HOST)");
  flags.add("container", &f.container,
            "The task's ContainerInfo as v1 JSON, for what --docker_image cannot say (network, "
            "port_mappings, volumes, parameters); a Tessera addition");
  flags.add("checkpoint", &f.checkpoint, "Ask agents to checkpoint the framework's tasks");
  flags.add("connect_timeout", &f.connectTimeout,
            "Give up when the master cannot be subscribed to within this time");
  flags.add("principal", &f.principal,
            "The principal the framework authenticates as (and sets in its FrameworkInfo)");
  flags.add("secret", &f.secret, "The secret of --principal, sent as HTTP Basic credentials");
  switch (loadFlags(kRole, flags, args)) {
    case LoadOutcome::kExitOk:
      return 0;
    case LoadOutcome::kExitError:
      return 1;
    case LoadOutcome::kRun:
      break;
  }
  auto fail = [&err](std::string_view message) {
    err << "tessera execute: " << message << std::endl;
    return 1;
  };
  const bool zk = zookeeper::isZkUrl(f.master);
  if (!zk) {
    if (auto master = scheduler::parseMasterAddress(f.master); !master) {
      return fail(master.status().message());
    }
  }
  if (f.secret && !f.principal) return fail("flag '--secret' needs '--principal'");
  std::optional<v1::TaskGroupInfo> group;
  api::Result<v1::TaskInfo> task = v1::TaskInfo();
  api::Result<api::Resources> needed = api::Resources();
  if (f.taskGroup) {
    if (f.task) return fail("flags '--task' and '--task_group' are mutually exclusive");
    auto parsed = taskGroupFromJson(*f.taskGroup);
    if (!parsed) return fail(parsed.status().message());
    group = std::move(parsed).value();
    task = group->tasks(0);
    for (const auto& member : group->tasks()) {
      auto resources = api::Resources::fromProto(member.resources());
      if (!resources) {
        return fail(fmt::format("flag '--task_group': {}", resources.status().message()));
      }
      *needed += *resources;
    }
  } else {
    task = describeTask(f, flags);
    if (!task) return fail(task.status().message());
    needed = api::Resources::fromProto(task->resources());
    if (!needed) {
      return fail(fmt::format("flag '{}': {}", f.task ? "--task" : "--resources",
                              needed.status().message()));
    }
  }

  StopSignalMask signals;
  runtime::Runtime runtime(runtime::Runtime::Options{1, 1, 16});
  runtime.start();
  auto executor = runtime.makeExecutor();
  ExecuteScheduler scheduler(f, std::move(task).value(), std::move(needed).value(), *executor, out,
                             err, std::move(group));
  scheduler::DriverOptions options;
  options.master = f.master;
  std::unique_ptr<LeaderFollower> follower;
  if (zk) {
    // --master=zk://...: subscribe to whoever leads, and to the next leader after a failover.
    auto started = LeaderFollower::start(runtime, f.master, "--master");
    if (!started) {
      runtime.stop();
      return fail(started.status().message());
    }
    follower = std::move(started).value();
    auto leader = follower->awaitLeader(
        std::chrono::duration_cast<std::chrono::milliseconds>(f.connectTimeout));
    if (!leader) {
      follower->stop();
      runtime.stop();
      return fail(fmt::format("no leading master found under '{}' within {}", f.master,
                              runtime::formatDuration(f.connectTimeout)));
    }
    options.master = *leader;
    options.resolveMaster = follower->resolver();
  }
  options.maxBackoff = 1s;
  if (f.principal) {
    options.authorization = fmt::format(
        "Basic {}", net::base64Encode(fmt::format("{}:{}", *f.principal, f.secret.value_or(""))));
  }
  HttpSchedulerDriver driver(runtime, *executor, scheduler, options);
  scheduler.setDriver(&driver);
  auto result = scheduler.result();
  executor->post([&scheduler] { scheduler.start(); });

  bool interrupted = false;
  // Wakes as soon as the result is set (a 100ms signal wait here used to add up to 100ms to
  // every run); a stop signal is noticed within 50ms.
  while (result.wait_for(50ms) != std::future_status::ready) {
    int signal = signals.wait(0ms);
    if (signal != 0 && !interrupted) {
      interrupted = true;
      executor->post([&scheduler, signal] { scheduler.interrupt(signal); });
    }
  }
  int code = result.get();
  executor->call([&] {
    scheduler.stopTimers();
    driver.stop();
    return 0;
  });
  executor->drain();
  if (follower) follower->stop();
  runtime.stop();
  return code;
}

}  // namespace tessera::kernel::cli
