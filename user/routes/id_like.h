// Which path segments look like identifiers (and so would give every user, order or session
// its own route)? Heuristics in the spirit of Grafana Beyla's route decorator: conservative
// enough that words ("users", "v2", "2fa") stay, eager enough that the common ID shapes go.
#pragma once

#include <string_view>

namespace netprof {

// True for: decimal numbers ("42"), UUIDs in 8-4-4-4-12 hex form, hex strings of 8+ chars with
// at least one digit (hashes, object ids), and base64/base64url-ish tokens of 16+ chars with
// at least two digits and one letter (session ids, signed tokens). Words and slugs of letters
// only never match.
bool is_id_like(std::string_view segment);

// Splits "name.ext" into stem and ".ext" when ext is 1..5 alphanumerics (so "{id}.jpg" keeps
// the extension the asset classifier needs). Without such an extension, ext is empty.
void split_extension(std::string_view segment, std::string_view& stem, std::string_view& ext);

}  // namespace netprof
