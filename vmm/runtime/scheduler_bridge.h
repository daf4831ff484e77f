#pragma once

// The session's view of sched/: a scheduler for the session's VMs, fed with their vCPU-thread
// events. Internal to vmm/runtime (session.cpp is its one user).

#include <memory>
#include <string>

#include "common/result.h"
#include "sched/metrics.h"
#include "vmm/runtime/machine.h"
#include "vmm/runtime/session_config.h"

namespace spindle {

class SessionScheduler : public VmObserver
{
public:
	virtual Status addVm(const VirtualMachine &vm) = 0; // before the VM starts
	virtual Status start() = 0;
	virtual void vmStopped(int vm) = 0;
	virtual void stop() = 0; // restores every thread it touched
	virtual sched::SchedulerMetrics metrics() const = 0;
	virtual std::string summary() const = 0; // one line: the policy, the pool, the event loop
};

// What the host's KVM cannot do, as far as the scheduler cares.
struct SchedulerHostFacts {
	std::string pauseExitsUnavailable; // non-empty: why no PAUSE exit can be observed here
};

// Every policy, cfs included, gets a scheduler object (cfs only pins).
Result<std::unique_ptr<SessionScheduler>> makeSessionScheduler(const SessionConfig &config,
							      const SchedulerHostFacts &facts = {});

} // namespace spindle
