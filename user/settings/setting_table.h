// The one table of settings: name, kind, range, help and the modes that have it. From it come
// the command-line flags of every mode (--report-interval), the node JSON config fields
// (report_interval) and the NETPROF_* environment variables (NETPROF_REPORT_INTERVAL), and
// every value from any of them is checked by the same code against the same range.
//
// To add a setting: a field in settings/settings.h and one row in setting_table.cc. Every mode
// it names gets the flag; node mode also the JSON field and the variable.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/expected.h"
#include "settings/settings.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace netprof {

enum Mode : unsigned { kProxy = 1, kAttach = 2, kNode = 4, kDemo = 8 };
constexpr unsigned kRelayModes = kProxy | kAttach | kNode | kDemo;  // every mode that profiles
constexpr unsigned kInterceptModes = kAttach | kNode;               // eBPF interception

enum class SettingKind {
  kText,     // a string
  kChoice,   // one of `choices`
  kBool,     // flag --x (or --x=false) and --no-x; true/false in JSON and variables
  kCount,    // a whole number in [min, max]
  kNumber,   // a finite number in [min, max] (or 0 with zero_is_off)
  kTexts,    // a list of strings: repeatable flag, JSON array, comma-separated variable
  kNumbers,  // a list of finite numbers, each in [min, max]
  kPorts,    // a list of TCP ports (1-65535), at most kMaxPortsPerDirection
};

struct Setting {
  std::string name;        // JSON field; flag --name with '-' for '_'; NETPROF_NAME
  std::string short_flag;  // "-q", or ""
  SettingKind kind = SettingKind::kText;
  double min = 0, max = 0;
  bool zero_is_off = false;           // kNumber: 0 is also allowed (meaning "off")
  std::string zero_meaning = "off";   // what 0 means there, for error messages
  std::vector<std::string> choices;   // kChoice
  std::string bool_true, bool_false;  // kChoice: what a deprecated true/false meant
  bool split_commas = true;           // kTexts on the command line: "a,b" is two items
  std::vector<std::string> aliases;   // old names, accepted with a deprecation note
  std::string type_name;              // shown in --help: SECONDS, ADDR:PORT, ...
  std::string help;
  unsigned modes = 0;
  // A check besides kind and range (route syntax, an address); "" when fine.
  std::function<std::string(const nlohmann::json& value)> check;
  std::function<void(Settings&, const nlohmann::json& value)> set;  // value already checked
  std::function<nlohmann::json(const Settings&)> get;

  Setting& range(double lo, double hi) {
    min = lo, max = hi;
    return *this;
  }
  Setting& off_at_zero() {
    zero_is_off = true;
    return *this;
  }
  // 0 is allowed and means `meaning` (e.g. "auto"), not "off".
  Setting& zero_means(std::string meaning) {
    zero_is_off = true;
    zero_meaning = std::move(meaning);
    return *this;
  }
  Setting& alias(std::string old) {
    aliases.push_back(std::move(old));
    return *this;
  }
  Setting& short_name(std::string s) {
    short_flag = std::move(s);
    return *this;
  }
  Setting& type(std::string t) {
    type_name = std::move(t);
    return *this;
  }
  Setting& extra_check(std::function<std::string(const nlohmann::json&)> c) {
    check = std::move(c);
    return *this;
  }
  Setting& one_of(std::vector<std::string> c) {
    choices = std::move(c);
    return *this;
  }
  Setting& was_bool(std::string if_true, std::string if_false) {  // node's old true/false
    bool_true = std::move(if_true);
    bool_false = std::move(if_false);
    return *this;
  }
  Setting& keep_commas() {
    split_commas = false;
    return *this;
  }
};

const std::vector<Setting>& setting_table();
// The setting named `name` (or one of its old names: then *deprecated is set); null if none.
const Setting* find_setting(const std::string& name, bool* deprecated = nullptr);
std::string flag_name(const std::string& name);  // "inbound_ports" -> "--inbound-ports"
std::string env_name(const std::string& name);   // "inbound_ports" -> "NETPROF_INBOUND_PORTS"

// Checks `value` against the setting's kind, range and own check; "" when fine, else the
// problem (without the setting's name). `note` gets a deprecation note when the value is an
// old spelling (node's skmsg true/false).
std::string check_value(const Setting& setting, nlohmann::json& value, std::string* note = nullptr);
// A flag's or variable's text as the JSON value a config file would hold ("80,8080" -> [80,
// 8080] for ports); lists are split at commas.
Expected<nlohmann::json> text_value(const Setting& setting, const std::string& text);
// The items of a repeated flag as the JSON value.
Expected<nlohmann::json> items_value(const Setting& setting, const std::vector<std::string>& items);

// Applies a JSON object of settings for `mode` (node's config file). `source` starts every
// error and note ("config file /etc/netprof.json").
Status apply_json_object(const nlohmann::json& object, const std::string& source, Mode mode,
                         Settings& settings, std::vector<std::string>& notes);
// Applies the NETPROF_* variables of `mode`'s settings found in `env`.
Status apply_environment(const std::map<std::string, std::string>& env, Mode mode,
                         Settings& settings, std::vector<std::string>& notes);
// Applies one textual value ("environment NETPROF_X" or "flag --x" as `source`).
Status apply_text(const Setting& setting, const std::string& text, const std::string& source,
                  Settings& settings, std::string* note = nullptr);

// Checks every setting of `mode` as it stands (also values set by code, not parsed), and what
// crosses settings. "" when fine, else a message naming the flag.
std::string check_settings(const Settings& settings, Mode mode);
// The same for the profile part alone (what run_profile_session needs).
std::string check_profile_options(const ProfileOptions& profile);

// The flags of one mode. Construct it when registering the subcommand; call apply() from the
// subcommand's callback, after CLI11 parsed the command line.
class SettingFlags {
 public:
  SettingFlags(CLI::App& app, Mode mode);
  ~SettingFlags();
  SettingFlags(const SettingFlags&) = delete;
  SettingFlags& operator=(const SettingFlags&) = delete;
  // Applies the flags given on the command line over `settings`; notes for old spellings.
  Status apply(Settings& settings, std::vector<std::string>& notes) const;
  // Applies, prints the notes (and an error) on stderr; false on a bad value.
  bool apply_or_report(Settings& settings) const;

 private:
  struct Bound;
  std::vector<std::unique_ptr<Bound>> bound_;
};

}  // namespace netprof
