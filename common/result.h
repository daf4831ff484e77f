#pragma once

// A small result type for system paths: a value, or an errno plus a line of context.
// g++ 12 under C++20 has no std::expected, so this is the minimal stand-in. It never throws;
// callers check ok() and pass the error up until the top prints it as one line.

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace spindle {

class Error
{
public:
	Error(int code, std::string context) : code_(code), context_(std::move(context)) {}

	// An error that is not from a system call (bad input, malformed file): code is EINVAL, and
	// the message is the context alone.
	static Error invalid(std::string context)
	{
		Error error(EINVAL, std::move(context));
		error.input_ = true;
		return error;
	}
	// An error from the last failed system call: captures errno now.
	static Error fromErrno(std::string context) { return Error(errno, std::move(context)); }

	int code() const { return code_; }
	const std::string &context() const { return context_; }

	// True for bad input (a flag, a file, a guest record), false for a failed system call.
	bool isInput() const { return input_; }

	// "context: strerror" for system errors, just the context for input errors.
	std::string message() const
	{
		if (input_ || code_ == 0)
			return context_;
		return context_ + ": " + std::strerror(code_);
	}

	// Prepend an outer context ("loading kernel: " + inner).
	Error wrap(const std::string &outer) const
	{
		Error error(code_, outer + ": " + context_);
		error.input_ = input_;
		return error;
	}

private:
	int code_;
	std::string context_;
	bool input_ = false;
};

template<typename T>
class [[nodiscard]] Result
{
public:
	Result(T value) : v_(std::move(value)) {}
	Result(Error error) : v_(std::move(error)) {}

	bool ok() const { return v_.index() == 0; }
	explicit operator bool() const { return ok(); }

	T &value() & { return std::get<0>(v_); }
	const T &value() const & { return std::get<0>(v_); }
	T &&value() && { return std::get<0>(std::move(v_)); }
	T *operator->() { return &std::get<0>(v_); }
	const T *operator->() const { return &std::get<0>(v_); }
	T &operator*() & { return std::get<0>(v_); }
	const T &operator*() const & { return std::get<0>(v_); }
	T &&operator*() && { return std::get<0>(std::move(v_)); }

	const Error &error() const { return std::get<1>(v_); }

private:
	std::variant<T, Error> v_;
};

template<>
class [[nodiscard]] Result<void>
{
public:
	Result() = default;
	Result(Error error) : error_(std::move(error)), ok_(false) {}

	bool ok() const { return ok_; }
	explicit operator bool() const { return ok_; }
	const Error &error() const { return error_; }

private:
	Error error_{0, {}};
	bool ok_ = true;
};

using Status = Result<void>;

} // namespace spindle
