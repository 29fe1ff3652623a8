#include "tessera/api/resources.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tessera::api {
namespace {

Resources parsed(std::string_view text, std::string_view defaultRole = "*") {
  Result<Resources> result = Resources::parse(text, defaultRole);
  EXPECT_TRUE(result.isOk()) << text << ": " << result.status().toString();
  return result.isOk() ? *result : Resources();
}

std::string parseError(std::string_view text) {
  Result<Resources> result = Resources::parse(text);
  EXPECT_FALSE(result.isOk()) << "'" << text << "' parsed as '" << result->toString() << "'";
  if (result.isOk()) return "";
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  return result.status().message();
}

// ---- Parsing and printing ------------------------------------------------------------------

TEST(ResourcesTest, ParsesTheAgentFlagForm) {
  Resources r = parsed("cpus:2;mem:1024;disk:4096;ports:[31000-32000];gpus:0");
  EXPECT_EQ(r.cpus(), 2.0);
  EXPECT_EQ(r.mem(), 1024.0);
  EXPECT_EQ(r.disk(), 4096.0);
  EXPECT_EQ(r.gpus(), 0.0);  // a zero entry is dropped, as Mesos does
  EXPECT_EQ(r.ports(), (std::vector<ValueRange>{{31000, 32000}}));
  EXPECT_EQ(r.size(), 4u);
  EXPECT_EQ(r.toString(), "cpus:2;disk:4096;mem:1024;ports:[31000-32000]");
}

TEST(ResourcesTest, EmptyTextAndSpacesAreEmptyResources) {
  EXPECT_TRUE(parsed("").empty());
  EXPECT_TRUE(parsed(" ; ;").empty());
  EXPECT_EQ(Resources().toString(), "");
  EXPECT_EQ(Resources().toJson(), "[]");
  EXPECT_EQ(parsed(" cpus : 2 ; mem:1 ;"), parsed("cpus:2;mem:1"));
}

TEST(ResourcesTest, ParsesSetsAndRangesIntoCanonicalForm) {
  Resources r = parsed("zones:{b, a ,c};ports:[5-9, 1-3, 4-4, 20]");
  EXPECT_EQ(r.toString(), "ports:[1-9,20-20];zones:{a,b,c}");
  EXPECT_EQ(r.ports(), (std::vector<ValueRange>{{1, 9}, {20, 20}}));
  EXPECT_EQ(parsed("ports:[];zones:{}"), Resources());
}

TEST(ResourcesTest, SameKindIsAddedUp) {
  EXPECT_EQ(parsed("cpus:1;cpus:2.5"), parsed("cpus:3.5"));
  EXPECT_EQ(parsed("ports:[1-3];ports:[4-6]").toString(), "ports:[1-6]");
  EXPECT_EQ(parsed("s:{a};s:{b}").toString(), "s:{a,b}");
}

TEST(ResourcesTest, ScalarsKeepThreeDecimalsRoundedToNearest) {
  EXPECT_EQ(parsed("cpus:0.1").scalarMillis("cpus"), 100);
  EXPECT_EQ(parsed("cpus:0.001").scalarMillis("cpus"), 1);
  EXPECT_EQ(parsed("cpus:2.0004").scalarMillis("cpus"), 2000);
  EXPECT_EQ(parsed("cpus:2.0005").scalarMillis("cpus"), 2001);
  EXPECT_EQ(parsed("cpus:2.0015").scalarMillis("cpus"), 2002);  // exact, no double rounding
  EXPECT_EQ(parsed("cpus:.5").scalarMillis("cpus"), 500);
  EXPECT_EQ(parsed("cpus:1.250").toString(), "cpus:1.25");
  EXPECT_EQ(parsed("cpus:0.001").toString(), "cpus:0.001");
  EXPECT_EQ(parsed("mem:9000000000000").toString(), "mem:9000000000000");
}

TEST(ResourcesTest, StaticReservationsUseTheRoleSuffix) {
  Resources r = parsed("cpus(ops):2;cpus:1;mem(*):10");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r.cpus(), 3.0);
  EXPECT_EQ(r.toString(), "cpus:1;cpus(ops):2;mem:10");
  const Resources::Entry& reserved = r.entries()[1];
  ASSERT_EQ(reserved.reservations.size(), 1u);
  EXPECT_EQ(reserved.reservations[0].type, ReservationType::kStatic);
  EXPECT_EQ(reserved.reservations[0].role, "ops");
  EXPECT_EQ(reserved.reservationRole(), "ops");
  EXPECT_EQ(r.entries()[0].reservationRole(), "*");
}

TEST(ResourcesTest, DefaultRoleAppliesToResourcesWithoutOne) {
  Resources r = parsed("cpus:2;mem(*):5;disk(eng):1", "ops");
  EXPECT_EQ(r.toString(), "cpus(ops):2;disk(eng):1;mem:5");
  Result<Resources> bad = Resources::parse("cpus:1", "a//b");
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().message(), "bad default role: role 'a//b' has an empty component");
}

TEST(ResourcesTest, DynamicReservationsCarryThePrincipal) {
  Resources r = parsed("cpus(ops, alice):2");
  ASSERT_EQ(r.size(), 1u);
  const Reservation& reservation = r.entries()[0].reservations.at(0);
  EXPECT_EQ(reservation.type, ReservationType::kDynamic);
  EXPECT_EQ(reservation.role, "ops");
  EXPECT_EQ(reservation.principal, "alice");
  EXPECT_EQ(r.toString(), "cpus(ops,alice):2");
  // Different principals, or static vs dynamic, are different reservations.
  EXPECT_EQ(parsed("cpus(ops,alice):1;cpus(ops,bob):1;cpus(ops):1").size(), 3u);
}

TEST(ResourcesTest, RefinedReservationsUseMesossPrintedForm) {
  std::string text = "cpus(reservations: [(STATIC,eng),(DYNAMIC,eng/web,alice)]):1";
  Resources r = parsed(text);
  ASSERT_EQ(r.size(), 1u);
  ASSERT_EQ(r.entries()[0].reservations.size(), 2u);
  EXPECT_EQ(r.entries()[0].reservationRole(), "eng/web");
  EXPECT_EQ(r.toString(), "cpus(reservations: [(STATIC,eng),(DYNAMIC,eng/web,alice)]):1");
  // A dynamic reservation without a principal has no short form.
  EXPECT_EQ(parsed("cpus(reservations: [(DYNAMIC,ops)]):1").toString(),
            "cpus(reservations: [(DYNAMIC,ops)]):1");
  EXPECT_EQ(parsed("cpus(reservations: [(STATIC,ops)]):1"), parsed("cpus(ops):1"));
}

TEST(ResourcesTest, TextRoundTrips) {
  for (std::string_view text : {
           "cpus:2;disk:4096;mem:1024;ports:[31000-32000]",
           "cpus:0.001;cpus(ops):1.5;cpus(ops,alice):2;mem(eng/web):3",
           "cpus(reservations: [(STATIC,eng),(DYNAMIC,eng/web,alice)]):1;zones:{a,b}",
           "ports:[0-0,2-18446744073709551615]",
       }) {
    Resources r = parsed(text);
    EXPECT_EQ(r.toString(), text);
    EXPECT_EQ(parsed(r.toString()), r);
    EXPECT_EQ(parsed(r.toJson()), r) << r.toJson();
    Result<Resources> fromProto = Resources::fromProto(r.toProto());
    ASSERT_TRUE(fromProto.isOk()) << fromProto.status().toString();
    EXPECT_EQ(*fromProto, r);
  }
}

TEST(ResourcesTest, RejectsMalformedTextNamingTheToken) {
  EXPECT_EQ(parseError("cpus:abc"), "bad resource 'cpus:abc': 'abc' is not a number");
  EXPECT_EQ(parseError("mem:1024;cpus2"), "bad resource 'cpus2': missing ':'");
  EXPECT_EQ(parseError("cpus:-1"), "bad resource 'cpus:-1': '-1' is negative");
  EXPECT_EQ(parseError("cpus:1e3"), "bad resource 'cpus:1e3': '1e3' is not a number");
  EXPECT_EQ(parseError("cpus:nan"), "bad resource 'cpus:nan': 'nan' is not a number");
  EXPECT_EQ(parseError("cpus:0.0001"),
            "bad resource 'cpus:0.0001': '0.0001' is below the 0.001 resolution");
  EXPECT_EQ(parseError("cpus:99999999999999999"),
            "bad resource 'cpus:99999999999999999': '99999999999999999' is too large");
  EXPECT_EQ(parseError("ports:[5-3]"), "bad resource 'ports:[5-3]': range '5-3' has begin > end");
  EXPECT_EQ(parseError("ports:[1-3"), "bad resource 'ports:[1-3': unclosed '['");
  EXPECT_EQ(parseError("ports:1-3]"), "bad resource 'ports:1-3]': unopened ']'");
  EXPECT_EQ(parseError("ports:[1-5,3-7]"),
            "bad resource 'ports:[1-5,3-7]': ranges '1-5' and '3-7' overlap");
  EXPECT_EQ(parseError("ports:[a-7]"),
            "bad resource 'ports:[a-7]': range 'a-7' is not 'begin-end'");
  EXPECT_EQ(parseError("ports:[1-99999999999999999999]"),
            "bad resource 'ports:[1-99999999999999999999]': range '1-99999999999999999999' is out "
            "of bounds");
  EXPECT_EQ(parseError("zones:{a,b"), "bad resource 'zones:{a,b': unclosed '{'");
  EXPECT_EQ(parseError("zones:{a,a}"), "bad resource 'zones:{a,a}': duplicate set item 'a'");
  EXPECT_EQ(parseError("zones:{a,,b}"), "bad resource 'zones:{a,,b}': empty set item");
  EXPECT_EQ(parseError(":2"), "bad resource ':2': empty name");
  EXPECT_EQ(parseError("(ops):2"), "bad resource '(ops):2': empty name");
  EXPECT_EQ(parseError("cpus:"), "bad resource 'cpus:': empty value");
  EXPECT_EQ(parseError("cpus(ops:2"), "bad resource 'cpus(ops:2': unclosed '('");
  EXPECT_EQ(parseError("cpus(ops)2"), "bad resource 'cpus(ops)2': missing ':'");
  EXPECT_EQ(parseError("cpus():2"), "bad resource 'cpus():2': empty role");
  EXPECT_EQ(parseError("cpus(a//b):2"),
            "bad resource 'cpus(a//b):2': role 'a//b' has an empty component");
  EXPECT_EQ(parseError("cpus(-a):2"),
            "bad resource 'cpus(-a):2': role '-a' has a component starting with '-'");
  EXPECT_EQ(parseError("cpus(*,alice):2"),
            "bad resource 'cpus(*,alice):2': role '*' cannot be reserved");
  EXPECT_EQ(parseError("cpus(ops,):2"), "bad resource 'cpus(ops,):2': empty principal");
  EXPECT_EQ(parseError("c pus:2"),
            "bad resource 'c pus:2': name 'c pus' contains whitespace or one of '*,;:()[]{}'");
  EXPECT_EQ(parseError("cpus(reservations: [(DYNAMIC,a),(DYNAMIC,b)]):1"),
            "bad resource 'cpus(reservations: [(DYNAMIC,a),(DYNAMIC,b)]):1': role 'b' is not a "
            "refinement of 'a'");
  EXPECT_EQ(parseError("cpus(reservations: [(DYNAMIC,a),(STATIC,a/b)]):1"),
            "bad resource 'cpus(reservations: [(DYNAMIC,a),(STATIC,a/b)]):1': refined reservation "
            "for role 'a/b' is not dynamic");
  EXPECT_EQ(parseError("cpus(reservations: [(SOMETIMES,a)]):1"),
            "bad resource 'cpus(reservations: [(SOMETIMES,a)]):1': unknown reservation type "
            "'SOMETIMES'");
}

// ---- JSON ----------------------------------------------------------------------------------

TEST(ResourcesTest, ParsesMesossJsonForm) {
  Resources r = parsed(R"( [{"name":"cpus","type":"SCALAR","scalar":{"value":2}},
      {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":31000,"end":32000}]}},
      {"name":"zones","type":"SET","set":{"item":["b","a"]}},
      {"name":"mem","type":"SCALAR","scalar":{"value":0.1},"role":"ops"},
      {"name":"disk","type":"SCALAR","scalar":{"value":10},
       "reservations":[{"type":"DYNAMIC","role":"eng","principal":"alice"}]}] )");
  EXPECT_EQ(r, parsed("cpus:2;ports:[31000-32000];zones:{a,b};mem(ops):0.1;disk(eng,alice):10"));
}

TEST(ResourcesTest, PrintsMesossJsonForm) {
  EXPECT_EQ(parsed("cpus:2.5;ports:[1-3,5-9];zones:{a,b};mem(ops,al\"ice):1").toJson(),
            R"([{"name":"cpus","type":"SCALAR","scalar":{"value":2.5}},)"
            R"({"name":"mem","type":"SCALAR","scalar":{"value":1},)"
            R"("reservations":[{"type":"DYNAMIC","role":"ops","principal":"al\"ice"}]},)"
            R"({"name":"ports","type":"RANGES","ranges":{"range":[{"begin":1,"end":3},)"
            R"({"begin":5,"end":9}]}},)"
            R"({"name":"zones","type":"SET","set":{"item":["a","b"]}}])");
}

TEST(ResourcesTest, JsonDefaultRoleAndUnreservedRole) {
  Resources r = parsed(R"([{"name":"cpus","type":"SCALAR","scalar":{"value":1}},
                           {"name":"mem","type":"SCALAR","scalar":{"value":1},"role":"*"}])",
                       "ops");
  EXPECT_EQ(r, parsed("cpus(ops):1;mem:1"));
}

TEST(ResourcesTest, RejectsMalformedJson) {
  EXPECT_EQ(parseError(R"([{"name":"cpus","type":"TEXT","text":{"value":"x"}}])"),
            "bad resource 'cpus' at index 0: unknown type 'TEXT'");
  EXPECT_EQ(parseError(R"([{"name":"cpus","type":"SCALAR","scalar":{"value":1}},
                           {"name":"gpus","type":"FLOAT","scalar":{"value":1}}])"),
            "bad resource 'gpus' at index 1: unknown type 'FLOAT'");
  EXPECT_EQ(parseError(R"([{"name":"cpus","type":"SCALAR","scalar":{"value":-1}}])"),
            "bad resource 'cpus' at index 0: scalar '-1' is negative");
  EXPECT_EQ(parseError(R"([{"name":"cpus","type":"SCALAR"}])"),
            "bad resource 'cpus' at index 0: missing numeric 'scalar.value'");
  EXPECT_EQ(
      parseError(R"([{"name":"p","type":"RANGES","ranges":{"range":[{"begin":9,"end":1}]}}])"),
      "bad resource 'p' at index 0: range '9-1' has begin > end");
  EXPECT_EQ(
      parseError(R"([{"name":"p","type":"RANGES","ranges":{"range":[{"begin":-1,"end":1}]}}])"),
      "bad resource 'p' at index 0: 'begin' is not a non-negative integer");
  EXPECT_EQ(parseError(R"([{"type":"SCALAR","scalar":{"value":1}}])"),
            "bad resource '' at index 0: missing 'name'");
  EXPECT_EQ(parseError(R"([{"name":"","type":"SCALAR","scalar":{"value":1}}])"),
            "bad resource '' at index 0: empty name");
  EXPECT_EQ(parseError(R"([{"name":"cpus","scalar":{"value":1},
                            "reservations":[{"type":"STATIC","role":"*"}]}])"),
            "bad resource 'cpus' at index 0: role '*' cannot be reserved");
  EXPECT_EQ(parseError(R"([{"name":null,"type":"SCALAR","scalar":{"value":1}}])"),
            "bad resource '' at index 0: 'name' is not a string");
  EXPECT_EQ(parseError(R"([{"name":"cpus","type":7,"scalar":{"value":1}}])"),
            "bad resource 'cpus' at index 0: 'type' is not a string");
  EXPECT_EQ(parseError(R"([{"name":"cpus","type":"SCALAR","scalar":{"value":"2"}}])"),
            "bad resource 'cpus' at index 0: missing numeric 'scalar.value'");
  EXPECT_EQ(parseError(R"([{"name":"s","type":"SET","set":{"item":[1]}}])"),
            "bad resource 's' at index 0: 'set.item[0]' is not a string");
  EXPECT_EQ(
      parseError(R"([{"name":"p","type":"RANGES","ranges":{"range":[{"begin":1.5,"end":2}]}}])"),
      "bad resource 'p' at index 0: 'begin' is not a non-negative integer");
  EXPECT_EQ(parseError(R"([{"name":"cpus","type":"SCALAR","scalar":{"value":1},
                            "reservations":[{"type":"STATIC"}]}])"),
            "bad resource 'cpus' at index 0: 'reservations[0]' needs a 'type' and a 'role'");
  EXPECT_EQ(parseError(R"({"name":"cpus"})"), "resources JSON is not an array");
  EXPECT_EQ(parseError("[1]"), "bad resource at index 0: not an object");
  EXPECT_TRUE(parseError(R"([{"name":"cpus")").starts_with("bad resources JSON: "));
}

// ---- Protobuf ------------------------------------------------------------------------------

TEST(ResourcesTest, ConvertsToAndFromProto) {
  Resources r = parsed("cpus:2;cpus(ops,alice):1;ports:[1-3]");
  google::protobuf::RepeatedPtrField<v1::Resource> proto = r.toProto();
  ASSERT_EQ(proto.size(), 3);
  EXPECT_EQ(proto[0].name(), "cpus");
  EXPECT_EQ(proto[0].type(), v1::Value::SCALAR);
  EXPECT_EQ(proto[0].scalar().value(), 2.0);
  EXPECT_EQ(proto[0].reservations_size(), 0);
  ASSERT_EQ(proto[1].reservations_size(), 1);
  EXPECT_EQ(proto[1].reservations(0).type(), v1::Resource::ReservationInfo::DYNAMIC);
  EXPECT_EQ(proto[1].reservations(0).role(), "ops");
  EXPECT_EQ(proto[1].reservations(0).principal(), "alice");
  EXPECT_EQ(proto[2].ranges().range(0).end(), 3u);

  // The pre-refinement `role` field is a static reservation.
  v1::Resource old;
  old.set_name("mem");
  old.set_type(v1::Value::SCALAR);
  old.mutable_scalar()->set_value(64);
  old.set_role("eng");
  proto.Add()->CopyFrom(old);
  Result<Resources> back = Resources::fromProto(proto);
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_EQ(*back, r + parsed("mem(eng):64"));
}

TEST(ResourcesTest, RejectsBadProto) {
  google::protobuf::RepeatedPtrField<v1::Resource> proto;
  v1::Resource* text = proto.Add();
  text->set_name("hostname");
  text->set_type(v1::Value::TEXT);
  Result<Resources> result = Resources::fromProto(proto);
  ASSERT_FALSE(result.isOk());
  EXPECT_EQ(result.status().message(),
            "bad resource 'hostname' at index 0: unsupported type 'TEXT'");

  proto.Clear();
  v1::Resource* nan = proto.Add();
  nan->set_name("cpus");
  nan->set_type(v1::Value::SCALAR);
  nan->mutable_scalar()->set_value(std::numeric_limits<double>::infinity());
  result = Resources::fromProto(proto);
  ASSERT_FALSE(result.isOk());
  EXPECT_EQ(result.status().message(),
            "bad resource 'cpus' at index 0: scalar 'inf' is not finite");
}

// ---- Arithmetic ----------------------------------------------------------------------------

TEST(ResourcesTest, AdditionSumsScalarsAndUnitesRangesAndSets) {
  Resources r = parsed("cpus:1;ports:[1-3];zones:{a}");
  r += parsed("cpus:0.5;mem:2;ports:[4-8,10-12];zones:{b}");
  EXPECT_EQ(r.toString(), "cpus:1.5;mem:2;ports:[1-8,10-12];zones:{a,b}");
  EXPECT_EQ(parsed("cpus:1") + parsed("cpus(ops):1"), parsed("cpus(ops):1;cpus:1"));
  Resources self = parsed("cpus:1;ports:[1-2];zones:{a}");
  self += self;
  EXPECT_EQ(self.toString(), "cpus:2;ports:[1-2];zones:{a}");
}

TEST(ResourcesTest, SubtractionRemovesOnlyWhatIsThere) {
  Resources r = parsed("cpus:2;mem:10;ports:[1-10];zones:{a,b,c};disk(ops):5");
  r -= parsed("cpus:0.5;ports:[3-4,9-20];zones:{b,z};gpus:1;disk:5");
  EXPECT_EQ(r.toString(), "cpus:1.5;disk(ops):5;mem:10;ports:[1-2,5-8];zones:{a,c}");
  // Going to zero or below drops the entry.
  EXPECT_EQ(parsed("cpus:1;mem:1") - parsed("cpus:1"), parsed("mem:1"));
  EXPECT_EQ(parsed("cpus:1;mem:1") - parsed("cpus:3"), parsed("mem:1"));
  EXPECT_EQ(parsed("ports:[1-3]") - parsed("ports:[0-9]"), Resources());
  EXPECT_EQ(parsed("zones:{a}") - parsed("zones:{a}"), Resources());
  Resources self = parsed("cpus:1;ports:[1-3]");
  const Resources& same = self;  // not `self -= self`, which clang warns of
  self -= same;
  EXPECT_TRUE(self.empty());
}

TEST(ResourcesTest, RangeSubtractionSplitsAndTrims) {
  EXPECT_EQ((parsed("p:[1-100]") - parsed("p:[1-1,50-60,100-100]")).toString(), "p:[2-49,61-99]");
  EXPECT_EQ((parsed("p:[1-5,10-15,20-25]") - parsed("p:[3-12,22-30]")).toString(),
            "p:[1-2,13-15,20-21]");
  EXPECT_EQ(
      (parsed("p:[0-18446744073709551615]") - parsed("p:[1-18446744073709551615]")).toString(),
      "p:[0-0]");
}

TEST(ResourcesTest, FixedPointArithmeticIsExact) {
  Resources start = parsed("cpus:3.7;mem:1024");
  Resources r = start;
  Resources tenth = parsed("cpus:0.1");
  Resources thousandth = parsed("cpus:0.001;mem:0.001");
  for (int i = 0; i < 1'000'000; ++i) {
    r += tenth;
    r += thousandth;
  }
  EXPECT_EQ(r.scalarMillis("cpus"), 3700 + 1'000'000 * 101);
  for (int i = 0; i < 1'000'000; ++i) {
    r -= thousandth;
    r -= tenth;
  }
  EXPECT_EQ(r, start);
  EXPECT_EQ(r.cpus(), 3.7);
  // With doubles, 0.1 + 0.2 - 0.3 is not 0.
  EXPECT_EQ(parsed("cpus:0.1") + parsed("cpus:0.2") - parsed("cpus:0.3"), Resources());
}

TEST(ResourcesTest, HugeScalarSumsSaturateInsteadOfOverflowing) {
  Resources r = parsed("mem:9000000000000000;mem:9000000000000000");
  EXPECT_EQ(r.scalarMillis("mem"), std::numeric_limits<int64_t>::max());
  r += r;
  EXPECT_EQ(r.scalarMillis("mem"), std::numeric_limits<int64_t>::max());
  Resources split = parsed("mem:9000000000000000;mem(ops):9000000000000000");
  EXPECT_EQ(split.scalarMillis("mem"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(split.flatten().scalarMillis("mem"), std::numeric_limits<int64_t>::max());
}

TEST(ResourcesTest, ContainsIsPerReservationAndPerValue) {
  Resources agent = parsed("cpus:4;mem:1024;ports:[31000-32000];zones:{a,b};cpus(ops):2");
  EXPECT_TRUE(agent.contains(Resources()));
  EXPECT_TRUE(agent.contains(agent));
  EXPECT_TRUE(agent.contains(parsed("cpus:4;mem:1024")));
  EXPECT_TRUE(agent.contains(parsed("ports:[31000-31005,31900-32000];zones:{b}")));
  EXPECT_TRUE(agent.contains(parsed("cpus(ops):1.5")));
  EXPECT_FALSE(agent.contains(parsed("cpus:4.001")));
  EXPECT_FALSE(agent.contains(parsed("gpus:1")));
  EXPECT_FALSE(agent.contains(parsed("ports:[30999-31000]")));
  EXPECT_FALSE(agent.contains(parsed("zones:{c}")));
  EXPECT_FALSE(agent.contains(parsed("cpus(ops):3")));
  EXPECT_FALSE(agent.contains(parsed("cpus(eng):1")));
  EXPECT_FALSE(agent.contains(parsed("cpus(ops,alice):1")));
  EXPECT_FALSE(parsed("cpus:1").contains(parsed("cpus(ops):1")));
  EXPECT_TRUE(agent.flatten().contains(parsed("cpus:6")));
}

TEST(ResourcesTest, EqualityIsSemantic) {
  EXPECT_EQ(parsed("mem:1;cpus:2"), parsed("cpus:2;mem:1"));
  EXPECT_EQ(parsed("ports:[3-4,1-2]"), parsed("ports:[1-4]"));
  EXPECT_EQ(parsed("s:{b,a}"), parsed("s:{a,b}"));
  EXPECT_EQ(parsed("cpus:1.0"), parsed("cpus:1"));
  EXPECT_NE(parsed("cpus:1"), parsed("cpus(ops):1"));
  EXPECT_NE(parsed("cpus:1"), parsed("cpus:1.001"));
}

// ---- Roles ---------------------------------------------------------------------------------

TEST(ResourcesTest, FlattenDropsOrSetsReservations) {
  Resources r = parsed("cpus:1;cpus(ops):2;cpus(eng,alice):3;ports(ops):[1-2];ports:[3-4]");
  EXPECT_EQ(r.flatten(), parsed("cpus:6;ports:[1-4]"));
  EXPECT_EQ(r.flatten("web"), parsed("cpus(web):6;ports(web):[1-4]"));
}

TEST(ResourcesTest, FiltersByRole) {
  Resources r = parsed(
      "cpus:1;cpus(eng):2;cpus(eng,alice):4;cpus(reservations: "
      "[(STATIC,eng),(DYNAMIC,eng/web,bob)]):8;"
      "cpus(ops):16;cpus(engineering):32");
  EXPECT_EQ(r.unreserved(), parsed("cpus:1"));
  EXPECT_EQ(r.reserved().cpus(), 62.0);
  EXPECT_EQ(r.reserved("eng").cpus(), 6.0);
  EXPECT_EQ(r.reserved("eng/web").cpus(), 8.0);
  EXPECT_EQ(r.reserved("nobody"), Resources());
  EXPECT_EQ(r.allocatableTo("eng").cpus(), 1.0 + 2 + 4);
  EXPECT_EQ(r.allocatableTo("eng/web").cpus(), 1.0 + 2 + 4 + 8);
  EXPECT_EQ(r.allocatableTo("ops").cpus(), 1.0 + 16);
  EXPECT_EQ(r.allocatableTo("other").cpus(), 1.0);
}

TEST(ResourcesTest, RoleHelpers) {
  EXPECT_TRUE(isStrictSubrole("eng/web", "eng"));
  EXPECT_TRUE(isStrictSubrole("eng/web/a", "eng"));
  EXPECT_FALSE(isStrictSubrole("eng", "eng"));
  EXPECT_FALSE(isStrictSubrole("engineering", "eng"));
  EXPECT_FALSE(isStrictSubrole("eng", "eng/web"));
  EXPECT_TRUE(validateRole("*").isOk());
  EXPECT_TRUE(validateRole("eng/web").isOk());
  EXPECT_FALSE(validateRole("").isOk());
  EXPECT_FALSE(validateRole("eng/").isOk());
  EXPECT_FALSE(validateRole("a/../b").isOk());
  EXPECT_FALSE(validateRole("a b").isOk());
  EXPECT_FALSE(validateRole("a*").isOk());
}

// ---- Accessors -----------------------------------------------------------------------------

TEST(ResourcesTest, AccessorsSumAcrossReservations) {
  Resources r = parsed("cpus:1;cpus(ops):0.5;mem(eng):10;ports:[1-3];ports(ops):[4-5,9-9]");
  EXPECT_EQ(r.scalarMillis("cpus"), 1500);
  EXPECT_EQ(r.scalar("mem"), 10.0);
  EXPECT_EQ(r.scalar("nothing"), 0.0);
  EXPECT_EQ(r.scalar("ports"), 0.0);
  EXPECT_EQ(r.ports(), (std::vector<ValueRange>{{1, 5}, {9, 9}}));
  EXPECT_TRUE(r.ranges("cpus").empty());
}

TEST(ResourcesTest, ForEachScalarVisitsScalarEntriesInOrder) {
  Resources r = parsed("mem:2;cpus(ops):0.5;cpus:1;ports:[1-2]");
  std::vector<std::pair<std::string, int64_t>> seen;
  r.forEachScalar([&](std::string_view name, int64_t millis) { seen.emplace_back(name, millis); });
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, int64_t>>{
                      {"cpus", 1000}, {"cpus", 500}, {"mem", 2000}}));
}

// Found by fuzz/resources_fuzz.cc: a name of bytes that are no UTF-8 parsed, and then toJson()
// wrote JSON that no parser (ours included) reads. Every string a resource carries ends up in
// JSON (/state, offers), so one that is not UTF-8 is refused where it comes in, in either form.
TEST(ResourcesTest, RefusesStringsThatAreNotUtf8) {
  auto refusedAsNotUtf8 = [](std::string_view text) {
    return parseError(text).find("not valid UTF-8") != std::string::npos;
  };
  EXPECT_TRUE(
      refusedAsNotUtf8("\xfe\xff\xff\xf2"
                       "cpus:1"));                          // the fuzzer's input
  EXPECT_TRUE(refusedAsNotUtf8("cpus(web\xc3):1"));         // truncated sequence in a role
  EXPECT_TRUE(refusedAsNotUtf8("cpus(eng,al\xe2\x82):1"));  // ... in a principal
  EXPECT_TRUE(refusedAsNotUtf8("zones:{a,\xed\xa0\x80}"));  // a surrogate in a set item
  EXPECT_TRUE(refusedAsNotUtf8("cpu\xc0\xafs:1"));          // an overlong '/' in a name
  EXPECT_FALSE(validateRole("web\xff").isOk());

  v1::Resource resource;
  resource.set_name("mem\x80");
  resource.set_type(v1::Value::SCALAR);
  resource.mutable_scalar()->set_value(1);
  google::protobuf::RepeatedPtrField<v1::Resource> list;
  *list.Add() = resource;
  EXPECT_FALSE(Resources::fromProto(list).isOk());

  // Valid multi-byte UTF-8 is still a name, role, principal and set item like any other, and
  // its JSON reads back.
  Resources r =
      parsed("caf\xc3\xa9(\xe6\x97\xa5\xe6\x9c\xac,\xf0\x9f\x98\x80):1;zones:{\xc3\xa9t\xc3\xa9}");
  EXPECT_EQ(parsed(r.toJson()), r);
}

TEST(ResourcesTest, OfScalarBuildsOneUnreservedScalar) {
  EXPECT_EQ(Resources::ofScalar("cpus", 1500), parsed("cpus:1.5"));
  EXPECT_TRUE(Resources::ofScalar("cpus", 0).empty());
  EXPECT_TRUE(Resources::ofScalar("cpus", -5).empty());
}

}  // namespace
}  // namespace tessera::api
