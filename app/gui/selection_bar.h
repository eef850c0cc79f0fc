// The bar above the views: which trace (baseline or a variant, with its training-free /
// simulation label), layer and head the linked views show, and the selected query token. It
// edits the SelectionModel and follows it; it holds no state of its own.
#pragma once

#include <QWidget>

#include "app_types.h"

class QComboBox;
class QLabel;
class QSpinBox;
class QToolButton;

namespace attnscope::app {

class SelectionModel;

class SelectionBar : public QWidget {
  Q_OBJECT
 public:
  SelectionBar(SelectionModel* selection, QWidget* parent = nullptr);

  // Fills the trace list from the session (and keeps the selection).
  void setSession(const SessionDataPtr& session);

  QComboBox* traceCombo() const { return m_trace; }
  QSpinBox* layerSpin() const { return m_layer; }
  QSpinBox* headSpin() const { return m_head; }
  QLabel* queryLabel() const { return m_query; }

 private:
  void updateQueryLabel();

  SelectionModel* m_selection;
  SessionDataPtr m_session;
  QComboBox* m_trace = nullptr;
  QSpinBox* m_layer = nullptr;
  QSpinBox* m_head = nullptr;
  QLabel* m_query = nullptr;
  QToolButton* m_clearQuery = nullptr;
};

}  // namespace attnscope::app
