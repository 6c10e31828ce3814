// The seed field: a spin box over the whole seed range the engine uses (-1 = random, 0 .. 2^63-1, as
// upstream's random.randint(0, sys.maxsize)), so that "Reuse" and history reuse work for any seed drawn at
// random. QSpinBox holds an int only. Ref: Qt's QAbstractSpinBox subclassing notes (stepBy, stepEnabled,
// validate, fixup).
#pragma once

#include <QAbstractSpinBox>

#include <cstdint>
#include <limits>

namespace wan::app {

class SeedSpinBox : public QAbstractSpinBox {
    Q_OBJECT
public:
    static constexpr qint64 kRandom = -1;
    static constexpr qint64 kMaximum = std::numeric_limits<qint64>::max();

    explicit SeedSpinBox(QWidget* parent = nullptr);

    qint64 value() const { return value_; }
    qint64 minimum() const { return kRandom; }
    qint64 maximum() const { return kMaximum; }
    /// Values outside [-1, 2^63-1] become -1 (random).
    void setValue(qint64 value);
    /// "random (-1)": the text shown for -1.
    QString randomText() const;

    void stepBy(int steps) override;
    QValidator::State validate(QString& input, int& pos) const override;
    void fixup(QString& input) const override;
    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

signals:
    void valueChanged(qint64 value);

protected:
    StepEnabled stepEnabled() const override;
    void focusOutEvent(QFocusEvent* event) override;

private:
    /// The value the text stands for; false when it stands for none (yet).
    bool parse(const QString& text, qint64* value) const;
    void commitText();
    void showValue();

    qint64 value_ = kRandom;
};

}  // namespace wan::app
