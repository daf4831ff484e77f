#include "common/say_once.h"

#include <mutex>
#include <set>
#include <string>

namespace spindle {

bool firstTimeInProcess(std::string_view key)
{
	static std::mutex mutex;
	static std::set<std::string, std::less<>> seen;
	std::lock_guard lock(mutex);
	if (seen.find(key) != seen.end())
		return false;
	seen.emplace(key);
	return true;
}

} // namespace spindle
