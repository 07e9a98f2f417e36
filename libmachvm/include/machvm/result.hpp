// SPDX-License-Identifier: GPL-2.0
//
// Result<T>: a value or a std::error_code (C++20 has no std::expected).
// Errors on the hot path travel as Result; setup code turns them into
// exceptions with value() or value_or_throw("what failed").
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace machvm {

// The error code for an errno value (default: the current errno).
inline std::error_code errno_code(int e = errno) noexcept {
    return std::error_code(e, std::system_category());
}

// An error_code from a negative-errno return (io_uring CQE res, liburing).
inline std::error_code neg_errno_code(int res) noexcept {
    return errno_code(-res);
}

[[noreturn]] void throw_error(std::error_code ec, std::string_view what);

template <class T> class [[nodiscard]] Result {
    static_assert(!std::is_same_v<std::remove_cv_t<T>, std::error_code>,
                  "Result<std::error_code> is ambiguous");
    static_assert(!std::is_reference_v<T>, "Result<T&> is not supported");

  public:
    using value_type = T;

    Result(const T& v) noexcept(std::is_nothrow_copy_constructible_v<T>)
        : v_(std::in_place_index<1>, v) {}
    Result(T&& v) noexcept(std::is_nothrow_move_constructible_v<T>)
        : v_(std::in_place_index<1>, std::move(v)) {}
    Result(std::error_code ec) noexcept : v_(std::in_place_index<0>, ec) {
        if (!ec)
            std::get<0>(v_) = std::make_error_code(std::errc::invalid_argument);
    }

    bool ok() const noexcept { return v_.index() == 1; }
    explicit operator bool() const noexcept { return ok(); }

    // The error; a default (success) error_code when ok().
    std::error_code error() const noexcept { return ok() ? std::error_code() : std::get<0>(v_); }

    // The value; throws std::system_error if this holds an error.
    T& value() & {
        check("");
        return std::get<1>(v_);
    }
    const T& value() const& {
        check("");
        return std::get<1>(v_);
    }
    T&& value() && {
        check("");
        return std::get<1>(std::move(v_));
    }
    // Same, with `what` naming the failed operation in the exception.
    T&& value_or_throw(std::string_view what) && {
        check(what);
        return std::get<1>(std::move(v_));
    }
    T& value_or_throw(std::string_view what) & {
        check(what);
        return std::get<1>(v_);
    }

    template <class U> T value_or(U&& fallback) const& {
        return ok() ? std::get<1>(v_) : static_cast<T>(std::forward<U>(fallback));
    }

    // Unchecked access; only after ok().
    T& operator*() & noexcept { return *std::get_if<1>(&v_); }
    const T& operator*() const& noexcept { return *std::get_if<1>(&v_); }
    T* operator->() noexcept { return std::get_if<1>(&v_); }
    const T* operator->() const noexcept { return std::get_if<1>(&v_); }

  private:
    void check(std::string_view what) const {
        if (!ok())
            throw_error(std::get<0>(v_), what);
    }

    std::variant<std::error_code, T> v_;
};

template <> class [[nodiscard]] Result<void> {
  public:
    Result() noexcept = default;
    Result(std::error_code ec) noexcept : ec_(ec) {}

    bool ok() const noexcept { return !ec_; }
    explicit operator bool() const noexcept { return ok(); }
    std::error_code error() const noexcept { return ec_; }
    void value() const {
        if (ec_)
            throw_error(ec_, "");
    }
    void value_or_throw(std::string_view what) const {
        if (ec_)
            throw_error(ec_, what);
    }

  private:
    std::error_code ec_;
};

// Success for Result<void>.
inline Result<void> ok() noexcept {
    return {};
}

} // namespace machvm
