// Base of the Qt Test classes whose Settings go to a temporary ini file (never the user's real settings).
#pragma once

#include "app_test_support.h"

#include <QObject>
#include <QTemporaryDir>
#include <QTest>

namespace wan::app::test {

/// Qt Test runs this initTestCase() for the derived test class (it looks slots up through the base classes);
/// the derived class declares only its test functions.
class TemporarySettingsTest : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() {
        QVERIFY(settingsDir_.isValid());
        useTemporarySettings(settingsDir_.path());
    }

protected:
    QTemporaryDir settingsDir_;
};

}  // namespace wan::app::test
