#include "modules/auth/acls.h"

#include <gtest/gtest.h>

namespace tessera::modules::auth {
namespace {

api::AuthorizationRequest ask(std::optional<std::string> subject, std::string action,
                              std::optional<std::string> role,
                              std::optional<std::string> value = std::nullopt) {
  api::AuthorizationRequest request;
  request.subject = std::move(subject);
  request.action = std::move(action);
  request.role = std::move(role);
  request.value = std::move(value);
  return request;
}

Acls parsed(std::string_view json) {
  auto acls = parseAcls(json);
  EXPECT_TRUE(acls) << acls.status().toString();
  return acls ? std::move(acls).value() : Acls{};
}

TEST(AclsTest, FirstMatchingAclWins) {
  Acls acls = parsed(R"({
    "register_frameworks": [
      {"principals": {"values": ["ops"]}, "roles": {"type": "ANY"}},
      {"principals": {"type": "ANY"}, "roles": {"values": ["ads"]}},
      {"principals": {"values": ["web"]}, "roles": {"type": "NONE"}}
    ]})");
  EXPECT_TRUE(isAllowed(acls, ask("ops", "REGISTER_FRAMEWORK", "prod")));
  EXPECT_TRUE(isAllowed(acls, ask("web", "REGISTER_FRAMEWORK", "ads")));
  EXPECT_FALSE(isAllowed(acls, ask("web", "REGISTER_FRAMEWORK", "prod")));
  // Nothing matches: permissive (true by default) decides.
  EXPECT_TRUE(isAllowed(acls, ask("other", "REGISTER_FRAMEWORK", "prod")));
}

TEST(AclsTest, PermissiveFalseDeniesWhatNoAclMatches) {
  Acls acls = parsed(R"({"permissive": false,
    "run_tasks": [{"principals": {"values": ["a"]}, "users": {"values": ["alice"]}}]})");
  EXPECT_TRUE(isAllowed(acls, ask("a", "RUN_TASK", std::nullopt, "alice")));
  EXPECT_FALSE(isAllowed(acls, ask("a", "RUN_TASK", std::nullopt, "root")));
  EXPECT_FALSE(isAllowed(acls, ask("b", "RUN_TASK", std::nullopt, "alice")));
  // An action without rules: permissive decides too.
  EXPECT_FALSE(isAllowed(acls, ask("a", "UPDATE_WEIGHT", "prod")));
}

TEST(AclsTest, NoneRefusesAndAnonymousMatchesOnlyAnyOrNone) {
  Acls acls = parsed(R"({
    "teardown_frameworks": [
      {"principals": {"type": "NONE"}, "framework_principals": {"values": ["critical"]}},
      {"principals": {"values": ["ops"]}, "framework_principals": {"type": "ANY"}}
    ],
    "view_flags": [{"principals": {"type": "ANY"}, "flags": {"type": "ANY"}}],
    "update_weights": [{"principals": {"values": ["ops"]}, "roles": {"type": "ANY"}}]})");
  EXPECT_FALSE(isAllowed(acls, ask("ops", "TEARDOWN_FRAMEWORK", std::nullopt, "critical")));
  EXPECT_TRUE(isAllowed(acls, ask("ops", "TEARDOWN_FRAMEWORK", std::nullopt, "batch")));
  // Anonymous: matches ANY (allowed) ...
  EXPECT_TRUE(isAllowed(acls, ask(std::nullopt, "VIEW_FLAGS", std::nullopt)));
  // ... and NONE (refused), but not a list of principals (permissive decides).
  EXPECT_FALSE(isAllowed(acls, ask(std::nullopt, "TEARDOWN_FRAMEWORK", std::nullopt, "critical")));
  EXPECT_TRUE(isAllowed(acls, ask(std::nullopt, "UPDATE_WEIGHT", "prod")));
}

TEST(AclsTest, SetQuotasIsAnOlderNameForUpdateQuotas) {
  Acls acls = parsed(R"({"permissive": false,
    "set_quotas": [{"principals": {"values": ["ops"]}, "roles": {"values": ["prod"]}}]})");
  EXPECT_TRUE(isAllowed(acls, ask("ops", "UPDATE_QUOTA", "prod")));
  EXPECT_FALSE(isAllowed(acls, ask("ops", "UPDATE_QUOTA", "dev")));
}

TEST(AclsTest, ObjectsAreRolesOrValuesPerAction) {
  Acls acls = parsed(R"({"permissive": false,
    "view_frameworks": [{"principals": {"values": ["a"]}, "users": {"values": ["alice"]}}],
    "mark_agents_gone": [{"principals": {"values": ["ops"]}, "agents": {"type": "ANY"}}]})");
  EXPECT_TRUE(isAllowed(acls, ask("a", "VIEW_FRAMEWORK", "anyrole", "alice")));
  EXPECT_FALSE(isAllowed(acls, ask("a", "VIEW_FRAMEWORK", "alice", "bob")));
  EXPECT_TRUE(isAllowed(acls, ask("ops", "MARK_AGENT_GONE", std::nullopt)));
  EXPECT_FALSE(isAllowed(acls, ask("a", "MARK_AGENT_GONE", std::nullopt)));
}

TEST(AclsTest, RefusesMalformedAcls) {
  EXPECT_FALSE(parseAcls("not json"));
  EXPECT_FALSE(parseAcls("[]"));
  EXPECT_FALSE(parseAcls(R"({"permissive": "no"})"));
  EXPECT_FALSE(parseAcls(R"({"register_framework": []})"));  // a typo is an error
  EXPECT_FALSE(parseAcls(R"({"run_tasks": [{"principals": {}}]})"));
  EXPECT_FALSE(parseAcls(R"({"run_tasks": [{"principals": {"type": "SOMETIMES"}}]})"));
  EXPECT_FALSE(parseAcls(R"({"run_tasks": [{"principals": {"values": [1]}}]})"));
  EXPECT_FALSE(parseAcls(R"({"run_tasks": [{"roles": {"type": "ANY"}}]})"));
  auto error = parseAcls(R"({"run_tasks": [{"users": {"type": "ANY"}, "user": {}}]})");
  ASSERT_FALSE(error);
  EXPECT_NE(error.status().message().find("run_tasks[0]"), std::string::npos);
}

TEST(AclsTest, FlagIsAFileOrInlineJson) {
  EXPECT_EQ(aclsPath("file:///etc/acls.json"), "/etc/acls.json");
  EXPECT_EQ(aclsPath("/etc/acls.json"), "/etc/acls.json");
  EXPECT_FALSE(aclsPath(R"({"permissive": true})"));
  auto inline_ = readAclsFlag(R"({"permissive": true})");
  ASSERT_TRUE(inline_);
  EXPECT_EQ(*inline_, R"({"permissive": true})");
  EXPECT_FALSE(readAclsFlag("file:///nonexistent/acls.json"));
}

}  // namespace
}  // namespace tessera::modules::auth
