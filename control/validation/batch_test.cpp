// batch/v1 defaulting and validation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "validation/test_util.h"
#include "validation/validation.h"

namespace podwarp::validation {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace testing;  // NOLINT: test helpers

constexpr std::string_view kJob = R"({"apiVersion":"batch/v1","kind":"Job",
    "metadata":{"name":"pi","namespace":"default","uid":"0b5c2c4e-1111-2222-3333-444455556666"},
    "spec":{"template":{"spec":{"restartPolicy":"Never",
      "containers":[{"name":"pi","image":"perl:5.34","command":["perl","-e","print 1"]}]}}}})";

TEST(JobDefaults, GeneratedSelectorAndLabels) {
  json::value job = J(kJob);
  apply_defaults(R("batch", "Job"), job);
  const json::value& spec = job.at("spec");
  EXPECT_EQ(spec.at("completions"), 1);
  EXPECT_EQ(spec.at("parallelism"), 1);
  EXPECT_EQ(spec.at("backoffLimit"), 6);
  EXPECT_EQ(spec.at("completionMode"), "NonIndexed");
  EXPECT_EQ(spec.at("suspend"), false);
  EXPECT_EQ(spec.at("podReplacementPolicy"), "TerminatingOrFailed");
  EXPECT_FALSE(spec.as_object().contains("manualSelector"));
  EXPECT_EQ(
      spec.at("selector"),
      J(R"({"matchLabels":{"batch.kubernetes.io/controller-uid":"0b5c2c4e-1111-2222-3333-444455556666"}})"));
  EXPECT_EQ(spec.at("template").at("metadata"), J(R"({"creationTimestamp":null,"labels":{
                  "batch.kubernetes.io/controller-uid":"0b5c2c4e-1111-2222-3333-444455556666",
                  "batch.kubernetes.io/job-name":"pi",
                  "controller-uid":"0b5c2c4e-1111-2222-3333-444455556666","job-name":"pi"}})"));
  // kubectl shows the generated labels on the Job itself too.
  EXPECT_EQ(job.at("metadata").at("labels"), spec.at("template").at("metadata").at("labels"));
  EXPECT_THAT(texts(validate(R("batch", "Job"), job, nullptr)), IsEmpty());
}

TEST(JobDefaults, ParallelismOnlyAndPerIndexBackoff) {
  json::value job = J(R"({"metadata":{"name":"w","namespace":"default"},
      "spec":{"parallelism":3,"completionMode":"Indexed","backoffLimitPerIndex":1,
              "podFailurePolicy":{"rules":[{"action":"Ignore","onPodConditions":[{"type":"DisruptionTarget"}]}]},
              "template":{"spec":{"restartPolicy":"Never","containers":[{"name":"w","image":"w"}]}}}})");
  apply_defaults(R("batch", "Job"), job);
  const json::value& spec = job.at("spec");
  EXPECT_FALSE(spec.as_object().contains("completions"));
  EXPECT_EQ(spec.at("backoffLimit"), 2147483647);
  EXPECT_EQ(spec.at("podReplacementPolicy"), "Failed");
  EXPECT_EQ(spec.at("podFailurePolicy").at("rules").at(0).at("onPodConditions").at(0).at("status"),
            "True");
}

TEST(JobCreate, Messages) {
  std::string always(kJob);
  always.replace(always.find("\"Never\""), 7, "\"Always\"");
  EXPECT_THAT(create("batch", "Job", always),
              ElementsAre("spec.template.spec.restartPolicy: Required value: valid values: "
                          "\"OnFailure\", \"Never\""));
  EXPECT_THAT(
      create("batch", "Job", R"({"metadata":{"name":"j","namespace":"default","uid":"u"},
      "spec":{"backoffLimit":-1,"completionMode":"Sometimes",
              "template":{"spec":{"restartPolicy":"OnFailure","containers":[{"name":"c","image":"i"}]}}}})"),
      ElementsAre("spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0",
                  "spec.completionMode: Unsupported value: \"Sometimes\": supported values: "
                  "\"NonIndexed\", \"Indexed\""));
  // A job without uid cannot get a generated selector.
  EXPECT_THAT(create("batch", "Job", R"({"metadata":{"name":"j","namespace":"default"},
      "spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"i"}]}}}})"),
              ElementsAre("spec.selector: Required value",
                          "spec.template.metadata.labels: Invalid value: map[string]string(nil): "
                          "`selector` does not match template `labels`"));
  EXPECT_THAT(create("batch", "Job", R"({"metadata":{"name":"j","namespace":"default","uid":"u"},
      "spec":{"manualSelector":true,"selector":{"matchLabels":{"role":"batch"}},
              "template":{"metadata":{"labels":{"role":"web"}},
                          "spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"i"}]}}}})"),
              ElementsAre("spec.template.metadata.labels: Invalid value: "
                          "map[string]string{\"role\":\"web\"}: `selector` does not match template "
                          "`labels`"));
  EXPECT_THAT(
      create("batch", "Job", R"({"metadata":{"name":"j","namespace":"default","uid":"u"},
      "spec":{"podFailurePolicy":{"rules":[{"action":"FailJob","onExitCodes":{"operator":"In","values":[3,0,2]}}]},
              "template":{"spec":{"restartPolicy":"OnFailure","containers":[{"name":"c","image":"i"}]}}}})"),
      ElementsAre("spec.podFailurePolicy.rules[0].onExitCodes.values[1]: Invalid value: 0: "
                  "must not be 0 for the In operator",
                  "spec.podFailurePolicy.rules[0].onExitCodes.values: Invalid value: [3,0,2]: "
                  "must be ordered",
                  "spec.template.spec.restartPolicy: Invalid value: \"OnFailure\": only "
                  "\"Never\" is supported when podFailurePolicy is specified"));
}

TEST(JobUpdate, TemplateIsImmutable) {
  json::value old = J(kJob);
  apply_defaults(R("batch", "Job"), old);
  old.at("metadata").as_object()["resourceVersion"] = "3";
  json::value now = old;
  now.at("spec").at("template").at("spec").at("containers").at(0).as_object()["image"] =
      "perl:5.36";
  auto errs = texts(validate(R("batch", "Job"), now, &old));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_THAT(errs[0],
              ::testing::StartsWith("spec.template: Invalid value: core.PodTemplateSpec{"));
  EXPECT_THAT(errs[0], ::testing::EndsWith(": field is immutable"));
  // Suspended jobs that never started may change scheduling directives.
  old.at("spec").as_object()["suspend"] = true;
  json::value resched = old;
  resched.at("spec").at("template").at("spec").as_object()["nodeSelector"] =
      J(R"({"pool":"batch"})");
  EXPECT_THAT(texts(validate(R("batch", "Job"), resched, &old)), IsEmpty());
  json::value more = old;
  more.at("spec").as_object()["completions"] = 5;
  EXPECT_THAT(texts(validate(R("batch", "Job"), more, &old)),
              ElementsAre("spec.completions: Invalid value: 5: field is immutable"));
}

constexpr std::string_view kCronJob = R"({"apiVersion":"batch/v1","kind":"CronJob",
    "metadata":{"name":"hello","namespace":"default"},
    "spec":{"schedule":"*/5 * * * *","jobTemplate":{"spec":{"template":{"spec":{
      "restartPolicy":"OnFailure","containers":[{"name":"hello","image":"busybox:1.36"}]}}}}}})";

TEST(CronJob, Defaults) {
  json::value cj = J(kCronJob);
  apply_defaults(R("batch", "CronJob"), cj);
  const json::value& spec = cj.at("spec");
  EXPECT_EQ(spec.at("concurrencyPolicy"), "Allow");
  EXPECT_EQ(spec.at("suspend"), false);
  EXPECT_EQ(spec.at("successfulJobsHistoryLimit"), 3);
  EXPECT_EQ(spec.at("failedJobsHistoryLimit"), 1);
  EXPECT_EQ(spec.at("jobTemplate").at("metadata"), J(R"({"creationTimestamp":null})"));
  // The job template gets pod defaults, not Job defaults.
  EXPECT_FALSE(spec.at("jobTemplate").at("spec").as_object().contains("backoffLimit"));
  EXPECT_EQ(spec.at("jobTemplate").at("spec").at("template").at("spec").at("dnsPolicy"),
            "ClusterFirst");
  EXPECT_THAT(texts(validate(R("batch", "CronJob"), cj, nullptr)), IsEmpty());
}

class CronSchedule : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(CronSchedule, Message) {
  std::string doc(kCronJob);
  doc.replace(doc.find("*/5 * * * *"), 11, GetParam().first);
  auto errs = create("batch", "CronJob", doc);
  if (GetParam().second.empty()) {
    EXPECT_THAT(errs, IsEmpty());
  } else {
    EXPECT_THAT(errs, ElementsAre("spec.schedule: Invalid value: \"" + GetParam().first +
                                  "\": " + GetParam().second));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CronSchedule,
    ::testing::Values(std::pair<std::string, std::string>{"0 0 * * MON-FRI", ""},
                      std::pair<std::string, std::string>{"@hourly", ""},
                      std::pair<std::string, std::string>{"@every 1h30m", ""},
                      std::pair<std::string, std::string>{"15,45 */2 1-15 jan,jul ?", ""},
                      std::pair<std::string, std::string>{
                          "* * * *", "expected exactly 5 fields, found 4: [* * * *]"},
                      std::pair<std::string, std::string>{
                          "61 * * * *", "end of range (61) above maximum (59): 61"},
                      std::pair<std::string, std::string>{
                          "* * 0 * *", "beginning of range (0) below minimum (1): 0"},
                      std::pair<std::string, std::string>{
                          "5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"},
                      std::pair<std::string, std::string>{
                          "*/0 * * * *", "step of range should be a positive number: */0"},
                      std::pair<std::string, std::string>{
                          "x * * * *",
                          "failed to parse int from x: strconv.Atoi: parsing \"x\": "
                          "invalid syntax"},
                      std::pair<std::string, std::string>{"@weekdays",
                                                          "unrecognized descriptor: @weekdays"},
                      // Numbers as Go's strconv.Atoi reads them, kept at 64 bits: negating the
                      // minimum overflowed, a second sign was taken, 2^32 wrapped to 0.
                      std::pair<std::string, std::string>{
                          "*/--9223372036854775808 * * * *",
                          "failed to parse int from --9223372036854775808: strconv.Atoi: parsing "
                          "\"--9223372036854775808\": invalid syntax"},
                      std::pair<std::string, std::string>{
                          "*/--5 * * * *",
                          "failed to parse int from --5: strconv.Atoi: parsing \"--5\": "
                          "invalid syntax"},
                      std::pair<std::string, std::string>{
                          "*/-5 * * * *", "negative number (-5) not allowed: -5"},
                      std::pair<std::string, std::string>{
                          "*/99999999999999999999 * * * *",
                          "failed to parse int from 99999999999999999999: strconv.Atoi: parsing "
                          "\"99999999999999999999\": value out of range"},
                      std::pair<std::string, std::string>{
                          "4294967296 * * * *",
                          "end of range (4294967296) above maximum (59): 4294967296"},
                      std::pair<std::string, std::string>{"*/+7 * * * *", ""}));

TEST(CronJob, OtherRules) {
  std::string tz(kCronJob);
  tz.replace(tz.find("*/5 * * * *"), 11, "TZ=UTC 0 * * * *");
  EXPECT_THAT(create("batch", "CronJob", tz),
              ElementsAre("spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or "
                          "CRON_TZ in schedule, use timeZone field instead"));
  std::string long_name(kCronJob);
  long_name.replace(long_name.find("\"hello\""), 7, "\"" + std::string(53, 'a') + "\"");
  EXPECT_THAT(create("batch", "CronJob", long_name),
              ElementsAre("metadata.name: Invalid value: \"" + std::string(53, 'a') +
                          "\": must be no more than 52 characters"));
  EXPECT_THAT(
      create("batch", "CronJob", R"({"metadata":{"name":"c","namespace":"default"},
      "spec":{"schedule":"@daily","concurrencyPolicy":"Sometimes","timeZone":"Local",
        "jobTemplate":{"spec":{"selector":{"matchLabels":{"a":"b"}},
          "template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"i"}]}}}}}})"),
      ElementsAre("spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit "
                  "time zone as defined in https://www.iana.org/time-zones",
                  "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported "
                  "values: \"Allow\", \"Forbid\", \"Replace\"",
                  "spec.jobTemplate.spec.selector: Invalid value: "
                  "v1.LabelSelector{MatchLabels:map[string]string{\"a\":\"b\"}, "
                  "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` will be "
                  "auto-generated"));
}

}  // namespace
}  // namespace podwarp::validation
