// SPDX-License-Identifier: GPL-2.0
//
// Versions: this library's release (kmod/version.h's MACHVM_VERSION, the
// same number as the module's MODULE_VERSION and the packages'), the
// loaded module's release, and the one message every program gives when
// the module speaks another ABI version than the program was built for.
#pragma once

#include <cstdint>
#include <string>

namespace machvm {

// The release this library (and the program linked with it) was built as.
const char* release() noexcept;

// The loaded module's release (/sys/module/machvm/version), or "" when no
// module is loaded or it does not say.
std::string module_release();

// "" when module_abi is the ABI this program was built for; otherwise a
// message naming both releases and ABI versions, which side is newer, and
// what to do (load the module of the same release).  prog: the program's
// name, for the message.
std::string abi_mismatch(const char* prog, std::uint32_t module_abi);

// The loaded module's ABI version from MACHVM_IOC_VERSION (an ioctl every
// ABI version keeps), or 0 when /dev/machvm cannot be opened.
std::uint32_t module_abi() noexcept;

} // namespace machvm
