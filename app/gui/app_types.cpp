// Shared value types: see app_types.h.
#include "app_types.h"

namespace attnscope::app {

QString SessionData::traceName(int index) const {
  if (index < 0 || index >= traceCount()) return QString();
  const Trace& t = *traces[static_cast<size_t>(index)];
  if (index == 0 && t.variant.is_baseline()) return QStringLiteral("baseline");
  return QString::fromStdString(t.variant.display_name());
}

}  // namespace attnscope::app
