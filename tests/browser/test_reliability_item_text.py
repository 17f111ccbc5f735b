"""Item text reaches the page as text in the live widget (tests/reliability owns the rest)."""
from __future__ import annotations

import pytest

from tests.reliability.test_security import HOSTILE_TITLE
from devstack.stack import ROOT


@pytest.mark.browser
def test_hostile_titles_and_reasons_render_as_text_in_the_live_widget(browser_context):
    page = browser_context.new_page()
    page.set_content('<liverec-widget slot="for-you" token="t" limit="3"><ol class="liverec-list"></ol>'
                     '<template class="liverec-item-template"><li><a data-field="title" data-href="url"></a>'
                     '<span data-field="reason"></span></li></template></liverec-widget>')
    page.add_script_tag(path=str(ROOT / "recsys" / "static" / "recsys" / "widget.js"))
    page.evaluate("""(title) => document.querySelector('liverec-widget').render({id: 'r1', items: [
        {item_id: '1', title: title, url: '/films/1/', reasons: [{text: '<b onmouseover=alert(1)>because</b>'}]}]}, 1)""",
                  HOSTILE_TITLE)
    assert page.inner_text("[data-field=title]") == HOSTILE_TITLE
    assert page.inner_text("[data-field=reason]") == "<b onmouseover=alert(1)>because</b>"
    assert page.evaluate("document.querySelectorAll('liverec-widget img, liverec-widget script, liverec-widget b').length") == 0
    page.wait_for_timeout(200)
    assert page.evaluate("window.pwned === undefined")
