// Compare panel: see compare_panel.h.
#include "compare_panel.h"

#include <qcustomplot.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "plot_axes.h"

namespace attnscope::app {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

ComparePanel ComparePanel::create(QCustomPlot* plot, QCPLayoutGrid* grid, int column,
                                  QCPColorScale* scale, QCPMarginGroup* rows, bool queryAxis) {
  ComparePanel p;
  QFont titleFont = plot->font();
  titleFont.setWeight(QFont::DemiBold);
  p.title = new QCPTextElement(plot, QString(), titleFont);
  grid->addElement(0, column, p.title);
  p.rect = newAxisRect(plot);
  grid->addElement(1, column, p.rect);
  p.rect->setMarginGroup(QCP::msTop | QCP::msBottom, rows);
  QCPAxis* x = p.rect->axis(QCPAxis::atBottom);
  QCPAxis* y = p.rect->axis(QCPAxis::atLeft);
  p.xTicks.reset(new QCPAxisTickerText);
  p.yTicks.reset(new QCPAxisTickerText);
  x->setTicker(p.xTicks);
  y->setTicker(p.yTicks);
  x->setSubTicks(false);
  y->setSubTicks(false);
  x->setTickLabelRotation(90);
  x->setLabel(QObject::tr("key token"));
  y->setRangeReversed(true);  // query 0 at the top, like the matrix it shows
  if (queryAxis) y->setLabel(QObject::tr("query token"));
  y->setTickLabels(queryAxis);
  p.rect->setRangeDrag(Qt::Horizontal | Qt::Vertical);
  p.rect->setRangeZoom(Qt::Horizontal | Qt::Vertical);
  for (QCPColorMap** map : {&p.overview, &p.detail}) {
    *map = addCellMap(p.rect);
    (*map)->setColorScale(scale);
  }
  p.detail->setVisible(false);

  p.hoverRow = addOverlayRect(plot, p.rect);
  p.hoverCol = addOverlayRect(plot, p.rect);
  p.queryRow = addOverlayRect(plot, p.rect);
  p.crossH = addOverlayLine(plot, p.rect);
  p.crossV = addOverlayLine(plot, p.rect);
  return p;
}

void ComparePanel::fill(QCPColorMap* map, const PooledMap* values, double logFloor) {
  QCPColorMapData* cells = map->data();
  if (!values || values->rows <= 0 || values->cols <= 0) {
    cells->clear();
    return;
  }
  cells->setSize(values->cols, values->rows);
  // Token j covers [j - 0.5, j + 0.5]: the cells spread evenly over [begin - 0.5, end - 0.5].
  cells->setRange(cellCentres(values->k_begin - 0.5, values->k_end - 0.5, values->cols),
                  cellCentres(values->q_begin - 0.5, values->q_end - 0.5, values->rows));
  for (int r = 0; r < values->rows; ++r) {
    const int lastQuery = values->row_edges[static_cast<size_t>(r) + 1] - 1;
    for (int c = 0; c < values->cols; ++c) {
      if (values->col_edges[static_cast<size_t>(c)] > lastQuery) {
        cells->setCell(c, r, kNaN);
        continue;
      }
      double v = values->values[static_cast<size_t>(r) * values->cols + c];
      if (logFloor > 0 && std::isfinite(v)) v = std::max(v, logFloor);
      cells->setCell(c, r, v);
    }
  }
}

void ComparePanel::placeMarks(const Marks& m, const QPalette& palette) {
  QColor hoverFill = palette.color(QPalette::Highlight);
  hoverFill.setAlpha(60);
  const QColor text = palette.color(QPalette::WindowText);
  QColor cross = text;
  cross.setAlpha(170);
  const int T = m.tokens;
  const bool showBands = m.hoverToken >= 0 && m.hoverToken < T;
  hoverRow->setVisible(showBands);
  hoverCol->setVisible(showBands);
  for (QCPItemRect* band : {hoverRow, hoverCol}) {
    band->setPen(QPen(palette.color(QPalette::Highlight), 1));
    band->setBrush(hoverFill);
  }
  if (showBands) {
    hoverRow->topLeft->setCoords(-0.5, m.hoverToken - 0.5);
    hoverRow->bottomRight->setCoords(T - 0.5, m.hoverToken + 0.5);
    hoverCol->topLeft->setCoords(m.hoverToken - 0.5, -0.5);
    hoverCol->bottomRight->setCoords(m.hoverToken + 0.5, T - 0.5);
  }
  const bool showQuery = m.queryToken >= 0 && m.queryToken < T;
  queryRow->setVisible(showQuery);
  queryRow->setPen(QPen(text, 1.2, Qt::DashLine));
  queryRow->setBrush(Qt::NoBrush);
  if (showQuery) {
    queryRow->topLeft->setCoords(-0.5, m.queryToken - 0.5);
    queryRow->bottomRight->setCoords(T - 0.5, m.queryToken + 0.5);
  }
  const bool showCross = m.crossQuery >= 0 && m.crossKey >= 0 && m.crossQuery < T && m.crossKey < T;
  crossH->setVisible(showCross);
  crossV->setVisible(showCross);
  crossH->setPen(QPen(cross, 1, Qt::DashLine));
  crossV->setPen(QPen(cross, 1, Qt::DashLine));
  if (showCross) {
    crossH->point1->setCoords(0, m.crossQuery);
    crossH->point2->setCoords(1, m.crossQuery);
    crossV->point1->setCoords(m.crossKey, 0);
    crossV->point2->setCoords(m.crossKey, 1);
  }
}

void ComparePanel::updateTicks(int tokens, const QStringList& labels) {
  xTicks->clear();
  yTicks->clear();
  if (tokens <= 0) return;
  const auto labelOf = [&labels](int t) { return t < labels.size() ? labels.at(t) : QString(); };
  setTokenTicks(*xTicks, rect->axis(QCPAxis::atBottom), tokens, rect->width(), labelOf);
  // Panels without query labels still need their ticks (the grid lines and tick marks).
  setTokenTicks(*yTicks, rect->axis(QCPAxis::atLeft), tokens, rect->height(), labelOf);
}

}  // namespace attnscope::app
