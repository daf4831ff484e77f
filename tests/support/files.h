#pragma once

// Whole-file reads for tests that check what spindle wrote.

#include <fstream>
#include <sstream>
#include <string>

namespace spindle::test {

inline std::string readFile(const std::string &path)
{
	std::ifstream file(path);
	std::stringstream text;
	text << file.rdbuf();
	return text.str();
}

} // namespace spindle::test
