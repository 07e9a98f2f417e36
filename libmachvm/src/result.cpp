// SPDX-License-Identifier: GPL-2.0
#include <machvm/result.hpp>

#include <string>

namespace machvm {

void throw_error(std::error_code ec, std::string_view what) {
    throw std::system_error(ec, std::string(what));
}

} // namespace machvm
