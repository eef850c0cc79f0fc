// Read-only summary of the loaded model: architecture, sizes, tensor types, file size and path.
#pragma once

#include <QWidget>

#include "app_types.h"

class QLabel;
class QFormLayout;

namespace attnscope::app {

class ModelSummaryPanel : public QWidget {
  Q_OBJECT
 public:
  explicit ModelSummaryPanel(QWidget* parent = nullptr);

  // nullptr shows the empty state. The path text is what the user opened.
  void setModel(const LoadedModelPtr& model);
  void setLoading(const QString& path);
  // Field text by its label ("Layers", "Path", ...) for tests; empty if unknown.
  QString fieldText(const QString& label) const;

 private:
  QLabel* addField(const QString& label);

  QFormLayout* m_form = nullptr;
  QLabel* m_status = nullptr;
  QList<QPair<QString, QLabel*>> m_fields;
};

// "123.4 MB" style size with decimal units, as file managers show it.
QString formatByteSize(quint64 bytes);
// "Q4_1 ×210, F32 ×61" sorted by count, largest first.
QString formatTensorTypes(const std::map<std::string, int>& counts);

}  // namespace attnscope::app
