#pragma once

// One table type for the command-line flags of `spindle run`, `spindle bench` and the
// scheduler's tuning flags: each flag is named, described and applied in one place, and the
// table walks argv ("--name value", "--name=value", "-c value", a switch, "--" to end the
// flags), refuses what it does not know with one line, and writes the help lines.

#include <algorithm>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace spindle {

template<typename Target>
struct Flag {
	std::string_view name;  // the long name, without "--"
	std::string_view value; // its metavariable ("N", "DURATION"); empty for a switch
	std::string_view help;  // for --help; '\n' continues it on the next line, under itself
	std::function<Status(Target &, const std::string &value)> apply; // value is "" for a switch
	char shortName = 0;     // 'c' for -c, or 0
};

template<typename Target>
class FlagTable
{
public:
	explicit FlagTable(std::vector<Flag<Target>> flags) : flags_(std::move(flags)) {}

	const std::vector<Flag<Target>> &flags() const { return flags_; }

	// By long name ("cpus" or "--cpus"), or nullptr.
	const Flag<Target> *find(std::string_view name) const
	{
		if (name.substr(0, 2) == "--")
			name.remove_prefix(2);
		for (const Flag<Target> &flag : flags_)
			if (flag.name == name)
				return &flag;
		return nullptr;
	}

	struct Hooks {
		// An argument that is not a flag; empty: refused as unexpected.
		std::function<Status(const std::string &argument)> positional;
		// Everything after "--"; empty: "--" is refused.
		std::function<Status(std::vector<std::string> rest)> rest;
		// Flags of another table this one forwards by name ("--name value", taking a value).
		std::function<bool(const std::string &name)> isPassThrough;
		std::function<Status(const std::string &name, const std::string &value)> passThrough;
		// For the error lines: "spindle run --help" and so on.
		std::string_view seeHelp;
	};

	// One pass over argv, applying the flags in order.
	Status parse(const std::vector<std::string> &args, Target &target, const Hooks &hooks) const
	{
		for (size_t i = 0; i < args.size(); ++i) {
			const std::string &arg = args[i];
			if (arg == "--") {
				if (!hooks.rest)
					return Error::invalid("unexpected '--' (see " + std::string(hooks.seeHelp) + ")");
				if (auto status = hooks.rest({args.begin() + static_cast<long>(i) + 1, args.end()}); !status)
					return status;
				return {};
			}
			if (arg.size() < 2 || arg[0] != '-') {
				if (!hooks.positional)
					return Error::invalid("unexpected argument '" + arg + "' (see " + std::string(hooks.seeHelp) + ")");
				if (auto status = hooks.positional(arg); !status)
					return status;
				continue;
			}
			std::string name = arg, inlineValue;
			bool hasInline = false;
			const Flag<Target> *flag = nullptr;
			if (arg[1] == '-') {
				if (auto eq = arg.find('='); eq != std::string::npos) {
					name = arg.substr(0, eq);
					inlineValue = arg.substr(eq + 1);
					hasInline = true;
				}
				flag = find(name);
			} else if (arg.size() == 2) {
				for (const Flag<Target> &f : flags_)
					if (f.shortName == arg[1])
						flag = &f;
			}
			if (!flag && arg[1] == '-' && hooks.isPassThrough && hooks.isPassThrough(name.substr(2))) {
				std::string value = inlineValue;
				if (!hasInline) {
					if (i + 1 >= args.size())
						return Error::invalid(name + " needs a value");
					value = args[++i];
				}
				if (auto status = hooks.passThrough(name.substr(2), value); !status)
					return status;
				continue;
			}
			if (!flag)
				return Error::invalid("unknown option '" + arg + "' (see " + std::string(hooks.seeHelp) + ")");
			std::string value;
			if (flag->value.empty()) {
				if (hasInline)
					return Error::invalid(name + " takes no value");
			} else if (hasInline) {
				value = inlineValue;
			} else if (i + 1 < args.size()) {
				value = args[++i];
			} else {
				return Error::invalid(name + " needs a value");
			}
			if (auto status = flag->apply(target, value); !status)
				return status;
		}
		return {};
	}

	// One line per flag ("  -c, --cpus N   help"), the help column at `column`.
	std::string help(size_t column = 28) const
	{
		std::string text;
		for (const Flag<Target> &flag : flags_) {
			std::string left = flag.shortName ? std::string("  -") + flag.shortName + ", --" : std::string("      --");
			left += std::string(flag.name) + (flag.value.empty() ? "" : " " + std::string(flag.value));
			left.resize(std::max(left.size() + 2, column), ' ');
			std::string_view rest = flag.help;
			for (bool first = true; first || !rest.empty(); first = false) {
				const size_t newline = rest.find('\n');
				text += (first ? left : std::string(column, ' ')) + std::string(rest.substr(0, newline)) + "\n";
				rest = newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
			}
		}
		return text;
	}

private:
	std::vector<Flag<Target>> flags_;
};

} // namespace spindle
