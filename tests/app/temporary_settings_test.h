// Base of the Qt Test classes whose Settings go to a temporary ini file (never the user's real settings).
#pragma once

#include "app_test_support.h"

#include <QObject>
#include <QTemporaryDir>
#include <QTest>

namespace wan::app::test {

/// Qt Test runs this initTestCase() for the derived test class (it looks slots up through the base classes);
/// the derived class declares only its test functions, and puts any further one-time setup in setUpTestCase().
class TemporarySettingsTest : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() {
        QVERIFY(settingsDir_.isValid());
        useTemporarySettings(settingsDir_.path());
        setUpTestCase();
    }

protected:
    /// Runs once after the settings are redirected; a failed QVERIFY in it fails initTestCase.
    virtual void setUpTestCase() {}

    QTemporaryDir settingsDir_;
};

}  // namespace wan::app::test
