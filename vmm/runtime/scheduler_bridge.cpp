// The session's view of sched/: turns the command line into SchedulerOptions, maps the
// session's VMs to scheduler VMs, and forwards vCPU-thread events.

#include <spdlog/spdlog.h>

#include "common/rate_limiter.h"
#include "sched/options.h"
#include "sched/scheduler.h"
#include "vmm/runtime/scheduler_bridge.h"
#include "vmm/runtime/session.h"

namespace spindle {

namespace {

class SchedulerBridge final : public SessionScheduler
{
public:
	SchedulerBridge(std::unique_ptr<sched::Scheduler> scheduler, std::string policy, sched::PolicyKind kind)
		: scheduler_(std::move(scheduler)), policy_(std::move(policy)), policyKind_(kind)
	{
	}

	Status addVm(const VirtualMachine &vm) override
	{
		if (vm.id() < 0 || static_cast<size_t>(vm.id()) != ids_.size())
			return Error::invalid("VMs must be added in order");
		if (auto fits = sched::checkVmFitsPolicy(policyKind_, vm.config().name, vm.config().cpus,
							  scheduler_->poolCpus().size());
		    !fits)
			return fits;
		auto id = scheduler_->addVm(vm.config().name, vm.config().cpus, vm.hintSlots(), &vm.samplingTarget());
		if (!id)
			return id.error();
		ids_.push_back(*id);
		return {};
	}

	void vcpuThreadStarted(int vm, unsigned vcpu, pid_t tid) override
	{
		// The vCPU runs even if it could not be pinned or watched; the user hears about it once
		// or a few times, not per vCPU of a large VM.
		if (auto status = scheduler_->attachVcpuThread(ids_[static_cast<size_t>(vm)], vcpu, tid); !status)
			if (attachLog_.allow(0))
				spdlog::warn("scheduler: vCPU {} of VM {}: {}", vcpu, vm, status.error().message());
	}

	void vcpuThreadStopping(int vm, unsigned vcpu) override
	{
		scheduler_->detachVcpuThread(ids_[static_cast<size_t>(vm)], vcpu);
	}

	void longSpin(int vm, unsigned vcpu, uint32_t waitsOn, uint32_t lockId) override
	{
		scheduler_->notifyLongSpin(ids_[static_cast<size_t>(vm)], vcpu, waitsOn, lockId);
	}

	Status start() override { return scheduler_->start(); }
	void setSeccomp(SeccompMode mode)
	{
		scheduler_->setThreadStartHook([mode] {
			if (auto status = installSeccompFilter(ThreadRole::Scheduler, mode); !status)
				spdlog::error("{}", status.error().message());
			seccompSelfTest(ThreadRole::Scheduler, mode);
		});
	}
	void vmStopped(int vm) override { scheduler_->vmStopped(ids_[static_cast<size_t>(vm)]); }
	void stop() override { scheduler_->stop(); }

	sched::SchedulerMetrics metrics() const override { return scheduler_->metrics(); }

	std::string summary() const override
	{
		std::string cpus;
		for (int cpu : scheduler_->poolCpus())
			cpus += (cpus.empty() ? "" : ",") + std::to_string(cpu);
		return "scheduler: policy " + policy_ + " on host CPUs " + cpus + " (event loop: " +
		       scheduler_->eventLoopBackend() + ")";
	}

private:
	std::unique_ptr<sched::Scheduler> scheduler_;
	std::string policy_;
	sched::PolicyKind policyKind_;
	std::vector<int> ids_;
	RateLimiter attachLog_{3, 0};
};

} // namespace

namespace {

struct SchedulerPlan {
	sched::SchedulerOptions options;
	std::vector<int> pool;
};

Result<SchedulerPlan> planScheduler(const SessionConfig &options)
{
	SchedulerPlan plan;
	auto policy = sched::parsePolicyName(options.policy);
	if (!policy)
		return policy.error();
	plan.options.policy = *policy;
	for (const auto &[name, value] : options.schedFlags)
		if (auto status = sched::applySchedFlag(plan.options, name, value); !status)
			return status.error();
	plan.options.tracePath = options.tracePath;
	if (auto status = sched::validateOptions(plan.options); !status)
		return status.error();
	auto pool = sched::checkPoolCpus(options.pcpus);
	if (!pool)
		return pool.error();
	plan.pool = std::move(*pool);
	return plan;
}

} // namespace

Result<GuestEnlightenment> guestEnlightenment(const SessionConfig &options)
{
	auto plan = planScheduler(options);
	if (!plan)
		return plan.error();
	return GuestEnlightenment{plan->options.detectHints, plan->options.detectPv};
}

uint32_t cpuidFeatures(const GuestEnlightenment &enlightenment)
{
	return SPINDLE_CPUID_F_PV_DEVICE | (enlightenment.longSpin ? SPINDLE_CPUID_F_LONG_SPIN : 0) |
	       (enlightenment.hints ? SPINDLE_CPUID_F_HINTS : 0);
}

Status checkSchedulerOptions(const SessionConfig &options)
{
	auto plan = planScheduler(options);
	if (!plan)
		return plan.error();
	for (const VmSpec &vm : options.vms)
		if (auto fits = sched::checkVmFitsPolicy(plan->options.policy, vm.name, vm.cpus, plan->pool.size()); !fits)
			return fits;
	return {};
}

Result<std::unique_ptr<SessionScheduler>> makeSessionScheduler(const SessionConfig &options,
							      const SchedulerHostFacts &facts)
{
	auto plan = planScheduler(options);
	if (!plan)
		return plan.error();
	plan->options.pleUnavailableReason = facts.pauseExitsUnavailable;
	const sched::PolicyKind kind = plan->options.policy;
	auto scheduler = sched::Scheduler::create(plan->options, std::move(plan->pool));
	if (!scheduler)
		return scheduler.error();
	auto bridge = std::make_unique<SchedulerBridge>(std::move(*scheduler), options.policy, kind);
	bridge->setSeccomp(options.seccomp);
	return std::unique_ptr<SessionScheduler>(std::move(bridge));
}

bool isSchedulerFlag(const std::string &name)
{
	// policy and trace are spindle run's own flags, listed with the others.
	return sched::schedFlagTable(/*withRunFlags=*/false).find(name) != nullptr;
}

std::string schedulerHelp()
{
	std::string text;
	for (const auto &policy : sched::policyDescriptions()) {
		std::string name(policy.name);
		name.resize(std::max<size_t>(name.size() + 1, 10), ' ');
		text += (text.empty() ? "" : "\n") + name + std::string(policy.summary);
	}
	return text;
}

std::string schedulerBoundsHelp()
{
	return sched::schedFlagTable(/*withRunFlags=*/false).help(36);
}

} // namespace spindle
