// One throughput sweep as a JSON value (throughput.cpp), so session files can hold several
// sweeps in one document. Internal to core.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "attnscope/throughput.h"
#include "json_fields.h"

namespace attnscope {

inline constexpr const char* kThroughputFormat = "attnscope-throughput";
inline constexpr int kThroughputSchemaVersion = 1;

nlohmann::json throughput_json_value(const ThroughputResult& result);
// Reads the sweep at `field` ("" for a whole document) of the document `fields` names.
ThroughputResult throughput_from_json_value(const nlohmann::json& value, const JsonFields& fields,
                                            const std::string& field);

}  // namespace attnscope
