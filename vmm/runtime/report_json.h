#pragma once

// --metrics and --results: the one JSON form of a session, from the typed SessionReport, through
// common/json's JsonWriter (compact: "key":value). A session that never ran (bad input, no KVM)
// still gets both files, with its status and the reason and no VMs.
//
//   metrics: {"status":N,"failure":…|null,"vms":[{"name","cpus","guest_mode","guest_mode_reason",
//             "stop_reason","exit_code","pv_malformed","long_spins","vcpus":[{"vcpu","exits":{…},
//             "hint_at_exit":{"seq","locks_held","waiting_on"}}]}],"scheduler":{sched/metrics.h}}
//   results: {"status":N,"failure":…|null,"vms":[one object per VM: vmm/runtime/guest_results.h]}

#include <string>

#include "vmm/runtime/session.h"

namespace spindle {

const char *stopReasonName(StopReason reason); // "guest_exit", "fatal", ...

// report null: the session did not run.
std::string metricsJson(const SessionReport *report, int status, const std::string &failure);
std::string resultsJson(const SessionReport *report, int status, const std::string &failure);

} // namespace spindle
