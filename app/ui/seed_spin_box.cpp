#include "ui/seed_spin_box.h"

#include <QFocusEvent>
#include <QFontMetrics>
#include <QLineEdit>
#include <QStyle>
#include <QStyleOptionSpinBox>

namespace wan::app {

SeedSpinBox::SeedSpinBox(QWidget* parent) : QAbstractSpinBox(parent) {
    setAccelerated(true);
    setCorrectionMode(QAbstractSpinBox::CorrectToPreviousValue);
    setToolTip(tr("-1 draws a random seed; the seed used is shown after each generation"));
    showValue();
    // Typing a valid number takes effect at once (as QSpinBox with keyboardTracking); anything else waits
    // for Return / focus out, where the text is corrected back to the value.
    connect(lineEdit(), &QLineEdit::textEdited, this, [this](const QString& text) {
        qint64 v = 0;
        if (parse(text, &v) && v != value_) {
            value_ = v;
            emit valueChanged(value_);
        }
    });
    connect(this, &QAbstractSpinBox::editingFinished, this, &SeedSpinBox::commitText);
}

QString SeedSpinBox::randomText() const { return tr("random (-1)"); }

void SeedSpinBox::setValue(qint64 value) {
    if (value < kRandom) value = kRandom;
    const bool changed = value != value_;
    value_ = value;
    showValue();
    if (changed) emit valueChanged(value_);
}

void SeedSpinBox::showValue() {
    const QString text = value_ == kRandom ? randomText() : QString::number(value_);
    if (lineEdit()->text() != text) lineEdit()->setText(text);
}

bool SeedSpinBox::parse(const QString& text, qint64* value) const {
    const QString t = text.trimmed();
    if (t == randomText() || t == QLatin1String("-1")) {
        *value = kRandom;
        return true;
    }
    if (t.isEmpty() || !t.front().isDigit()) return false;
    bool ok = false;
    const qint64 v = t.toLongLong(&ok);
    if (!ok || v < 0) return false;
    *value = v;
    return true;
}

void SeedSpinBox::commitText() {
    qint64 v = 0;
    if (parse(lineEdit()->text(), &v)) setValue(v);
    else showValue();  // back to the value (CorrectToPreviousValue)
}

void SeedSpinBox::focusOutEvent(QFocusEvent* event) {
    commitText();
    QAbstractSpinBox::focusOutEvent(event);
}

void SeedSpinBox::stepBy(int steps) {
    qint64 v = value_;
    if (steps > 0) v = v > kMaximum - steps ? kMaximum : v + steps;
    else v = v < kRandom - steps ? kRandom : v + steps;
    setValue(v);
    lineEdit()->selectAll();
}

QAbstractSpinBox::StepEnabled SeedSpinBox::stepEnabled() const {
    StepEnabled e = StepNone;
    if (value_ > kRandom) e |= StepDownEnabled;
    if (value_ < kMaximum) e |= StepUpEnabled;
    return e;
}

QValidator::State SeedSpinBox::validate(QString& input, int&) const {
    const QString t = input.trimmed();
    if (t.isEmpty() || t == QLatin1String("-")) return QValidator::Intermediate;
    qint64 v = 0;
    if (parse(t, &v)) return QValidator::Acceptable;
    if (randomText().startsWith(t)) return QValidator::Intermediate;
    return QValidator::Invalid;  // not a number, negative, or past 2^63-1
}

void SeedSpinBox::fixup(QString& input) const {
    qint64 v = 0;
    input = parse(input, &v) ? (v == kRandom ? randomText() : QString::number(v))
                             : (value_ == kRandom ? randomText() : QString::number(value_));
}

QSize SeedSpinBox::sizeHint() const {
    // Wide enough for the largest seed (19 digits) or the random text, plus the arrows.
    ensurePolished();
    const QFontMetrics fm(font());
    const int text = qMax(fm.horizontalAdvance(QString::number(kMaximum)), fm.horizontalAdvance(randomText())) + 4;
    QStyleOptionSpinBox opt;
    initStyleOption(&opt);
    const QSize inner(text, lineEdit()->sizeHint().height());
    return style()->sizeFromContents(QStyle::CT_SpinBox, &opt, inner, this);
}

QSize SeedSpinBox::minimumSizeHint() const {
    ensurePolished();
    const QFontMetrics fm(font());
    QStyleOptionSpinBox opt;
    initStyleOption(&opt);
    const QSize inner(fm.horizontalAdvance(randomText()) + 4, lineEdit()->minimumSizeHint().height());
    return style()->sizeFromContents(QStyle::CT_SpinBox, &opt, inner, this);
}

}  // namespace wan::app
