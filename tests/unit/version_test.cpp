// SPDX-License-Identifier: GPL-2.0
//
// machvm::release() and abi_mismatch(): the release is kmod/version.h's,
// and a program built for another ABI than the module's says which side
// is newer, with both releases and ABI versions.
#include <cstring>
#include <string>

#include <machvm/version.hpp>

#include "check.hpp"
#include <linux/machvm.h>

int main() {
    using machvm::abi_mismatch;
    CHECK(std::strlen(machvm::release()) > 0);
    CHECK(std::string(machvm::release()) == MACHVM_RELEASE);
    CHECK(abi_mismatch("tool", MACHVM_ABI_VERSION).empty());

    const std::string older = abi_mismatch("tool", MACHVM_ABI_VERSION - 1);
    CHECK(older.find("tool (machvm " + std::string(machvm::release()) + ", ABI " +
                     std::to_string(MACHVM_ABI_VERSION) +
                     ") is newer than the loaded machvm module") == 0);
    CHECK(older.find("ABI " + std::to_string(MACHVM_ABI_VERSION - 1) + ")") != std::string::npos);
    CHECK(older.find("load the module of release") != std::string::npos);

    const std::string newer = abi_mismatch("tool", MACHVM_ABI_VERSION + 1);
    CHECK(newer.find(") is older than the loaded machvm module") != std::string::npos);
    CHECK(newer.find("install the tools and library") != std::string::npos);
    return unit::finish("version_test");
}
