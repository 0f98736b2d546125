"""The status page in a real browser (issue 6): headless Chromium, driven by
Selenium, loads `GET /` from a running castellan, a click drains a real server
after the bearer token is asked for once, the status API shows the server
draining, and the page shows the generation and the rates; the persistence box
finds a client's entry, keeps it through the page's refresh and forgets it. A
screenshot of the page as each test left it is kept as status_page.png (the
drain test) and status_page_persistence.png in $CASTELLAN_ARTIFACT_DIR (default /tmp).

Needs Debian's python3-selenium, chromium and chromium-driver; skipped without.
"""

import json
import os
import re
import shutil
import tempfile
import unittest
import urllib.request

from harness import (
    IntegrationTest,
    addr,
    connect_via,
    free_port,
    make_config,
    read_name,
    recv_exactly,
    tcp_service,
    wait_for,
)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "page-token-456"
BROWSER_TIMEOUT = 15  # seconds for a page load, a script, a WebDriver command

try:
    from selenium import webdriver
    from selenium.common.exceptions import (
        NoAlertPresentException,
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
        WebDriverException,
    )
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.remote_connection import RemoteConnection
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    SELENIUM_MISSING = None
except ImportError as error:
    SELENIUM_MISSING = f"python3-selenium is not installed ({error})"


def missing_peer():
    """Why the browser test cannot run here, or None."""
    if SELENIUM_MISSING:
        return SELENIUM_MISSING
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"{path} not found (Debian package {package})"
    return None


def artifact_dir():
    folder = os.environ.get("CASTELLAN_ARTIFACT_DIR") or "/tmp"
    os.makedirs(folder, exist_ok=True)
    return folder


@unittest.skipIf(missing_peer() is not None, missing_peer() or "")
class StatusPageBrowserTest(IntegrationTest):
    def setUp(self):
        super().setUp()
        folder = tempfile.mkdtemp(prefix="castellan-page-")
        self.addCleanup(shutil.rmtree, folder, True)
        token_file = os.path.join(folder, "admin.token")
        with open(token_file, "w") as out:
            out.write(TOKEN + "\n")
        self.admin_port = free_port()
        self.port = free_port()
        self.smtp_port = free_port()  # a source_ip service, for the persistence box
        cas1, cas2 = self.named("cas1", "cas2")
        self.start(
            make_config(
                [
                    tcp_service("cas-rpc", self.port, [("cas1", cas1.port), ("cas2", cas2.port)]),
                    tcp_service(
                        "cas-smtp",
                        self.smtp_port,
                        [("cas1", cas1.port), ("cas2", cas2.port)],
                        persistence={"type": "source_ip", "timeout_s": 600},
                    ),
                ],
                threads=1,
                admin={"listen": addr(self.admin_port), "token_file": token_file},
            )
        )
        self.browser = self.open_browser()

    def open_browser(self):
        # Every WebDriver command gets a deadline, so a hung Chromium fails the
        # test instead of blocking it.
        RemoteConnection.set_timeout(BROWSER_TIMEOUT * 2)
        self.addCleanup(RemoteConnection.reset_timeout)
        options = webdriver.ChromeOptions()
        for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1600,900"):
            options.add_argument(argument)
        options.binary_location = CHROMIUM
        # A dialog nobody expected stays open (and makes the next command fail)
        # rather than being dismissed behind the test's back.
        options.set_capability("unhandledPromptBehavior", "ignore")
        try:
            browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        except WebDriverException as error:
            raise AssertionError(f"Chromium did not start through {CHROMEDRIVER}: {error}") from error
        self.addCleanup(browser.quit)
        # Registered after quit, so it runs before it: the page as the test left it.
        self.addCleanup(self.save_screenshot, browser)
        browser.set_page_load_timeout(BROWSER_TIMEOUT)
        browser.set_script_timeout(BROWSER_TIMEOUT)
        return browser

    def save_screenshot(self, browser):
        name = "status_page_persistence.png" if "persistence" in self._testMethodName else "status_page.png"
        path = os.path.join(artifact_dir(), name)
        try:
            self.dismiss_alert()  # an open prompt would refuse the screenshot
            if browser.save_screenshot(path):
                print(f"\nstatus page screenshot: {path}")
            else:
                print(f"\nstatus page screenshot could not be written to {path}")
        except (WebDriverException, OSError) as error:
            print(f"\nno status page screenshot: {error}")

    # -- helpers ---------------------------------------------------------

    def status(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/api/v1/status", timeout=5) as response:
            return json.loads(response.read())

    def service(self, name="cas-rpc"):
        return {s["name"]: s for s in self.status()["virtual_services"]}[name]

    def persistence_of(self, client):
        url = f"http://127.0.0.1:{self.admin_port}/api/v1/persistence?client={client}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())

    def server_state(self, name):
        return {s["name"]: s["state"] for s in self.service()["real_servers"]}[name]

    def one_connection(self):
        """A client that reads its server's name, sends a little and closes: traffic for the rates."""
        with connect_via(self.port) as sock:
            name = read_name(sock)
            sock.sendall(b"x" * 512)
            recv_exactly(sock, 512)  # the echo: a close with unread data would be a reset
            return name

    def alert_text(self):
        """The text of the dialog open in the page, or None."""
        try:
            return self.browser.switch_to.alert.text
        except NoAlertPresentException:
            return None

    def dismiss_alert(self):
        try:
            self.browser.switch_to.alert.dismiss()
        except (NoAlertPresentException, WebDriverException):
            pass

    def click_state_button(self, server, state):
        self.browser.find_element(By.CSS_SELECTOR, f'button[data-rs="{server}"][data-state="{state}"]').click()

    def page_text(self, selector):
        """Text of the first element matching selector, or None: missing, swapped by the
        5 s refresh while being read, or hidden behind an open dialog."""
        try:
            return self.browser.find_element(By.CSS_SELECTOR, selector).text
        except (NoSuchElementException, StaleElementReferenceException, WebDriverException):
            return None

    def wait_for_page(self, selector, predicate, timeout, what):
        """Waits until predicate(text of selector) holds; fails naming what with the last text seen."""
        seen = []

        def check():
            text = self.page_text(selector)
            seen.append(text)
            return text is not None and predicate(text)

        self.assertTrue(
            wait_for(check, timeout=timeout, interval=0.2),
            f"the page did not show {what} within {timeout}s; last text of {selector!r}: {seen[-1:]!r}; "
            f"message: {self.page_text('#message')!r}{self.log_tail()}",
        )

    # -- the test --------------------------------------------------------

    def test_drain_by_a_click_and_rates_shown(self):
        names = [self.one_connection() for _ in range(6)]
        self.assertEqual(sorted(set(names)), ["cas1", "cas2"], names)

        browser = self.browser
        browser.get(f"http://127.0.0.1:{self.admin_port}/")
        self.assertEqual(browser.title, "castellan status")
        generation = self.status()["config"]["generation"]
        self.assertEqual(self.page_text("#generation"), str(generation))
        self.assertEqual(self.page_text('tr[data-rs="cas1"] td.state'), "up")

        # Drain cas1 by a click. The page asks for the token: at once when the
        # status says one is required, else after the API's 401.
        self.click_state_button("cas1", "drain")
        try:
            WebDriverWait(browser, 5).until(expected_conditions.alert_is_present())
        except TimeoutException:
            self.fail(f"no token prompt within 5 s of the click; message: {self.page_text('#message')!r}")
        prompt = browser.switch_to.alert
        prompt.send_keys(TOKEN)
        prompt.accept()
        self.assertTrue(
            wait_for(lambda: self.server_state("cas1") == "draining", timeout=5, interval=0.1),
            f"cas1 is {self.server_state('cas1')!r} 5 s after the click, not draining; "
            f"dialog: {self.alert_text()!r}; message: {self.page_text('#message')!r}{self.log_tail()}",
        )
        self.assertIsNone(self.alert_text(), "a second prompt after the right token")
        self.wait_for_page("#message", lambda t: "cas1: draining" in t, 5, "the drain's answer")
        self.wait_for_page('tr[data-rs="cas1"] td.state', lambda t: t == "draining", 10, "cas1 draining")
        self.assertEqual({self.one_connection() for _ in range(4)}, {"cas2"}, "a drained server took a new client")

        # The token is kept: drain and enable cas2 without another prompt.
        self.click_state_button("cas2", "drain")
        self.assertTrue(
            wait_for(lambda: self.server_state("cas2") == "draining", timeout=5, interval=0.1),
            f"cas2 not draining after a click; dialog: {self.alert_text()!r}; "
            f"message: {self.page_text('#message')!r}",
        )
        self.wait_for_page('tr[data-rs="cas2"] td.state', lambda t: t == "draining", 10, "cas2 draining")
        self.click_state_button("cas2", "enabled")
        self.assertTrue(
            wait_for(lambda: self.server_state("cas2") == "up", timeout=5, interval=0.1),
            f"cas2 not up after a click on enable; dialog: {self.alert_text()!r}; "
            f"message: {self.page_text('#message')!r}",
        )
        self.wait_for_page('tr[data-rs="cas2"] td.state', lambda t: t == "up", 10, "cas2 up again")

        # Rates: the status document gains a rate every step (5 s) once two
        # samples exist; keep traffic flowing (to cas2) until two show, so that
        # the graph has a line.
        service = self.service()
        self.assertIn("rates", service, "the status document has no rates (a build before issue 6?)")
        self.assertEqual(service["rates"]["step_s"], 5)

        def service_rate():
            self.one_connection()
            series = self.service()["rates"]["connections_per_s"]
            return len(series) >= 2 and series[-1] > 0

        self.assertTrue(
            wait_for(service_rate, timeout=30, interval=0.3),
            f"not two connection rates in the status within 30 s: {self.service()['rates']}{self.log_tail()}",
        )
        cas2 = {s["name"]: s for s in self.service()["real_servers"]}["cas2"]
        self.assertTrue(cas2["rates"]["connections_per_s"], cas2)

        # The page refreshes itself every 5 s: the service's current rate and
        # its graph appear without a reload.
        rate = re.compile(r"^\d+(\.\d+)?/s$")
        self.wait_for_page(
            "tr.service-row td.connections-rate", lambda t: rate.match(t) is not None, 12, "the service's rate"
        )
        self.wait_for_page('tr[data-rs="cas2"] td.bytes-in-rate', lambda t: t.endswith("B/s"), 12, "cas2's byte rate")
        polylines = browser.find_elements(By.CSS_SELECTOR, "tr.service-row svg polyline")
        self.assertTrue(polylines, "no graph in the service's row")
        points = (polylines[0].get_attribute("points") or "").split()
        self.assertGreaterEqual(len(points), 2, f"the service's graph has points {points}")
        self.assertEqual(self.page_text("#generation"), str(self.status()["config"]["generation"]))
        self.assertIn("connections/s", browser.find_element(By.TAG_NAME, "body").text)
        self.assertIsNone(self.alert_text())

    def test_persistence_search_box_finds_and_forgets_a_client(self):
        client = "127.0.0.61"
        held = self.client(self.smtp_port, source_ip=client)
        server = read_name(held)
        self.assertEqual([e["real_server"] for e in self.persistence_of(client)], [server])

        browser = self.browser
        browser.get(f"http://127.0.0.1:{self.admin_port}/")
        box = browser.find_element(By.ID, "persistence-client")
        box.send_keys(client)
        browser.find_element(By.CSS_SELECTOR, "#persistence-form button[type=submit]").click()
        entry = "#persistence-entries tr.persistence-entry"
        self.wait_for_page(f"{entry} td.real-server", lambda t: t == server, 5, f"{client} on {server}")
        self.assertEqual(self.page_text(f"{entry} td.table-name"), "cas-smtp")
        self.assertEqual(self.page_text(f"{entry} td.expires"), "while connected")

        # The page refreshes its figures every 5 s; the search result stays.
        before = self.page_text("#updated")
        self.wait_for_page("#updated", lambda t: t.startswith("updated") and t != before, 12, "a refresh")
        self.assertEqual(self.page_text(f"{entry} td.real-server"), server, "the refresh cleared the search result")

        # Forget: the token is asked for, as for a state change.
        browser.find_element(By.ID, "persistence-forget").click()
        try:
            WebDriverWait(browser, 5).until(expected_conditions.alert_is_present())
        except TimeoutException:
            self.fail(f"no token prompt within 5 s of the click; message: {self.page_text('#message')!r}")
        prompt = browser.switch_to.alert
        prompt.send_keys(TOKEN)
        prompt.accept()
        self.wait_for_page("#message", lambda t: "forgot 1 entry" in t, 5, "the forget's answer")
        self.wait_for_page("#persistence-none", lambda t: client in t, 5, "no entry left")
        self.assertEqual(self.persistence_of(client), [])
        self.assertIsNone(self.alert_text())


if __name__ == "__main__":
    unittest.main()
