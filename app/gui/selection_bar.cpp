// Selection bar: see selection_bar.h.
#include "selection_bar.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QToolButton>
#include <algorithm>

#include "selection_model.h"

namespace attnscope::app {

SelectionBar::SelectionBar(SelectionModel* selection, QWidget* parent)
    : QWidget(parent), m_selection(selection) {
  auto* row = new QHBoxLayout(this);
  row->setContentsMargins(6, 4, 6, 4);
  m_trace = new QComboBox(this);
  m_trace->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  m_trace->setMinimumContentsLength(18);
  m_trace->setToolTip(tr("The run the views show: the full-attention baseline or a variant"));
  m_layer = new QSpinBox(this);
  m_head = new QSpinBox(this);
  m_layer->setToolTip(tr("Layer (0-based)"));
  m_head->setToolTip(tr("Query head (0-based)"));
  m_query = new QLabel(this);
  m_query->setTextFormat(Qt::PlainText);
  m_clearQuery = new QToolButton(this);
  m_clearQuery->setText(tr("Clear"));
  m_clearQuery->setToolTip(tr("Clear the selected query token"));
  row->addWidget(new QLabel(tr("Run:"), this));
  row->addWidget(m_trace);
  row->addSpacing(12);
  row->addWidget(new QLabel(tr("Layer:"), this));
  row->addWidget(m_layer);
  row->addWidget(new QLabel(tr("Head:"), this));
  row->addWidget(m_head);
  row->addSpacing(12);
  row->addWidget(m_query, 1);
  row->addWidget(m_clearQuery);

  connect(m_trace, qOverload<int>(&QComboBox::currentIndexChanged), m_selection, [this](int index) {
    if (index >= 0) m_selection->setTrace(index);
  });
  connect(m_layer, qOverload<int>(&QSpinBox::valueChanged), m_selection,
          [this](int layer) { m_selection->setLayerHead(layer, m_head->value()); });
  connect(m_head, qOverload<int>(&QSpinBox::valueChanged), m_selection,
          [this](int head) { m_selection->setLayerHead(m_layer->value(), head); });
  connect(m_clearQuery, &QToolButton::clicked, m_selection,
          [this] { m_selection->setQueryToken(-1); });

  connect(m_selection, &SelectionModel::layerHeadChanged, this, [this](int layer, int head) {
    const QSignalBlocker b1(m_layer), b2(m_head);
    m_layer->setValue(layer);
    m_head->setValue(head);
  });
  connect(m_selection, &SelectionModel::traceChanged, this, [this](int trace) {
    const QSignalBlocker b(m_trace);
    m_trace->setCurrentIndex(trace);
  });
  connect(m_selection, &SelectionModel::queryTokenChanged, this, &SelectionBar::updateQueryLabel);
  connect(m_selection, &SelectionModel::boundsChanged, this, [this] {
    const QSignalBlocker b1(m_layer), b2(m_head);
    m_layer->setRange(0, std::max(0, m_selection->nLayers() - 1));
    m_head->setRange(0, std::max(0, m_selection->nHeads() - 1));
    m_layer->setValue(m_selection->layer());
    m_head->setValue(m_selection->head());
  });
  setSession(nullptr);
}

void SelectionBar::setSession(const SessionDataPtr& session) {
  m_session = session;
  const QSignalBlocker b(m_trace);
  m_trace->clear();
  const int n = session ? session->traceCount() : 0;
  for (int i = 0; i < n; ++i) {
    const Trace& t = *session->traces[static_cast<size_t>(i)];
    QString text =
        i == 0 ? session->traceName(i) : QStringLiteral("%1: %2").arg(i).arg(session->traceName(i));
    if (t.variant.needs_training()) text += tr("  [simulation]");
    m_trace->addItem(text);
    m_trace->setItemData(i, QString::fromStdString(t.variant.to_string()), Qt::ToolTipRole);
  }
  if (n > 0) m_trace->setCurrentIndex(std::clamp(m_selection->trace(), 0, n - 1));
  for (QWidget* w : {static_cast<QWidget*>(m_trace), static_cast<QWidget*>(m_layer),
                     static_cast<QWidget*>(m_head)}) {
    w->setEnabled(n > 0);
  }
  updateQueryLabel();
}

void SelectionBar::updateQueryLabel() {
  const int token = m_selection->queryToken();
  m_clearQuery->setEnabled(token >= 0);
  if (!m_session || !m_session->hasRun()) {
    m_query->setText(tr("No run yet: press F5 to run the prompt"));
  } else if (token < 0 || token >= m_session->tokenLabels.size()) {
    m_query->setText(tr("Query: none (click a map row or a token)"));
  } else {
    m_query->setText(
        tr("Query: %1 \u201c%2\u201d").arg(token).arg(m_session->tokenLabels.at(token)));
  }
}

}  // namespace attnscope::app
