// SPDX-License-Identifier: GPL-2.0
#include "misbehave.hpp"

#include <machvm/cli.hpp>

namespace machvm {

namespace {
constexpr const char* kKnown = "delay:MS, error[:ERRNO], die[:N], flood[:PAGES], unasked, "
                               "silent, mute, none";
}

Misbehavior parse_misbehavior(std::string_view spec) {
    Misbehavior m;
    if (spec.empty())
        throw UsageError("--misbehave: empty list (known: " + std::string(kKnown) + ")");
    while (true) {
        std::size_t comma = spec.find(',');
        std::string_view item = spec.substr(0, comma);
        std::string_view name = item.substr(0, item.find(':'));
        std::optional<std::string_view> arg;
        if (item.find(':') != std::string_view::npos)
            arg = item.substr(item.find(':') + 1);
        const std::string opt = "--misbehave " + std::string(name);
        auto no_arg = [&] {
            if (arg)
                throw UsageError(opt + " takes no argument");
        };
        if (name == "delay") {
            if (!arg)
                throw UsageError("--misbehave delay needs milliseconds: delay:MS");
            m.delay_ms = static_cast<unsigned>(uint_arg(opt, *arg, 0, 600000));
        } else if (name == "error") {
            m.error = arg ? static_cast<int>(uint_arg(opt, *arg, 1, 4095)) : 5; // EIO
        } else if (name == "die") {
            m.die_at = arg ? static_cast<unsigned>(uint_arg(opt, *arg, 1, 1u << 30)) : 1;
        } else if (name == "flood") {
            m.flood_pages =
                arg ? static_cast<unsigned>(uint_arg(opt, *arg, 1, 1u << 20)) : kDefaultFloodPages;
        } else if (name == "unasked") {
            no_arg();
            m.unasked = true;
        } else if (name == "silent") {
            no_arg();
            m.silent = true;
        } else if (name == "mute") {
            no_arg();
            m.mute = true;
        } else if (name == "none") {
            no_arg();
        } else {
            throw UsageError("--misbehave: unknown behaviour '" + std::string(item) +
                             "' (known: " + kKnown + ")");
        }
        if (comma == std::string_view::npos)
            break;
        spec = spec.substr(comma + 1);
    }
    return m;
}

std::string to_string(const Misbehavior& m) {
    std::string s;
    auto add = [&](const std::string& item) {
        if (!s.empty())
            s += ',';
        s += item;
    };
    if (m.delay_ms)
        add("delay:" + std::to_string(m.delay_ms));
    if (m.error)
        add("error:" + std::to_string(m.error));
    if (m.die_at)
        add("die:" + std::to_string(m.die_at));
    if (m.flood_pages)
        add("flood:" + std::to_string(m.flood_pages));
    if (m.unasked)
        add("unasked");
    if (m.silent)
        add("silent");
    if (m.mute)
        add("mute");
    return s;
}

} // namespace machvm
