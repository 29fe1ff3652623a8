#pragma once

/// Reading a running cluster's JSON endpoints from system tests and benches (real processes on
/// loopback).

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "tests/support/subprocess.h"

namespace tessera::testing {

/// The JSON object `GET path` answers with 200, or null (no answer, another status, not an
/// object).
inline Poco::JSON::Object::Ptr getJson(
    uint16_t port, const std::string& path,
    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto response = httpRequest(port, "GET", path, "", timeout);
  if (!response || response->status != 200) return nullptr;
  try {
    return Poco::JSON::Parser().parse(response->body).extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception&) {
    return nullptr;
  }
}

/// The state of task `taskId` in the master's /state (frameworks' tasks and completed tasks),
/// or "" when the master does not list it.
inline std::string taskState(uint16_t masterPort, const std::string& taskId,
                             std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto state = getJson(masterPort, "/state", timeout);
  if (!state) return "";
  for (const char* frameworkList : {"frameworks", "completed_frameworks"}) {
    auto frameworks = state->getArray(frameworkList);
    for (size_t i = 0; frameworks && i < frameworks->size(); ++i) {
      for (const char* list : {"tasks", "completed_tasks"}) {
        auto tasks = frameworks->getObject(i)->getArray(list);
        for (size_t j = 0; tasks && j < tasks->size(); ++j) {
          auto task = tasks->getObject(j);
          if (task->getValue<std::string>("id") == taskId) {
            return task->getValue<std::string>("state");
          }
        }
      }
    }
  }
  return "";
}

/// The master's `activated_slaves`, 0 when it does not answer.
inline size_t activatedAgents(uint16_t masterPort,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto state = getJson(masterPort, "/state", timeout);
  if (!state || !state->has("activated_slaves")) return 0;
  return state->getValue<size_t>("activated_slaves");
}

}  // namespace tessera::testing
