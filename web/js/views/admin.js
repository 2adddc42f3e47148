// Admin, one tab per part: users (create, roles, disable/enable; needs
// admin:users), sessions (filter by user, revoke one or all of a user's,
// live socket counts; needs admin:sessions), live charts (views/admin-live.js;
// needs admin:sessions) and the audit trail (views/audit.js; needs
// admin:audit). Each tab appears only with its permission.

import { tether, describe } from '../client.js';
import { h, replace, nextId, ago, timeEl, browserName } from '../dom.js';
import { state, on, can, canAdmin, ROLE_HINTS } from '../state.js';
import { dataTable, autoRefresh, updatedAt, actionRunner, renderPager, fillUserOptions } from './parts.js';
import { livePanel } from './admin-live.js';
import { auditPanel } from './audit.js';

const PER_PAGE = 50;

// The tab last chosen, kept for the page's life (nothing is stored).
let chosenTab = null;

/**
 * A tab list over `parts` ({id, label, panel}): one panel shown at a time,
 * arrow keys between tabs (WAI-ARIA tabs pattern). `select(id)` shows one.
 */
function tabs(parts) {
  const buttons = parts.map(({ id, label }) => h('button', {
    type: 'button', role: 'tab', id: `admin-tab-${id}`, 'aria-controls': `admin-tabpanel-${id}`,
    dataset: { tab: id }, onclick: () => select(id, true),
    onkeydown: (e) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (!step) return;
      e.preventDefault();
      const i = parts.findIndex((p) => p.id === id);
      const next = parts[(i + step + parts.length) % parts.length].id;
      select(next, true);
      buttons.find((b) => b.dataset.tab === next).focus();
    },
  }, label));
  const panes = parts.map(({ id, panel }) => h('div', {
    role: 'tabpanel', id: `admin-tabpanel-${id}`, 'aria-labelledby': `admin-tab-${id}`,
  }, panel.el));
  function select(id, chosen = false) {
    if (chosen) chosenTab = id;
    parts.forEach((p, i) => {
      const on = p.id === id;
      const wasHidden = panes[i].hidden;
      buttons[i].setAttribute('aria-selected', String(on));
      buttons[i].tabIndex = on ? 0 : -1;
      panes[i].hidden = !on;
      if (on && wasHidden) p.panel.shown?.();
    });
  }
  select(parts.some((p) => p.id === chosenTab) ? chosenTab : parts[0].id);
  return {
    el: h('div', { class: 'admin-panels' },
      h('div', { role: 'tablist', class: 'tabs', 'aria-label': 'Admin' }, buttons), panes),
    select,
  };
}

export function adminView() {
  const el = h('section', { dataset: { view: 'admin' } });
  let panels = [];
  const build = () => {
    panels.forEach((p) => p.destroy());
    panels = [];
    const title = h('h1', { tabindex: '-1' }, 'Admin');
    if (!canAdmin()) {
      replace(el, title, h('p', { class: 'notice warning', role: 'status', id: 'admin-no-access' },
        'You do not have access to this page. It needs admin:users, admin:sessions or admin:audit.'));
      return;
    }
    // Usernames by id, shared so the sessions filter can name users.
    const directory = new Map();
    const sessions = can('admin:sessions') ? sessionsPanel(directory) : null;
    let tabList = null;
    // An audit row's session link opens the Sessions tab on that user.
    const showUser = sessions && ((id, name) => {
      tabList?.select('sessions', true);
      sessions.showUser(id, name);
    });
    const audit = can('admin:audit') ? auditPanel(directory, showUser) : null;
    const users = can('admin:users')
      ? usersPanel(directory, () => { sessions?.usersChanged(); audit?.usersChanged(); }) : null;
    const live = can('admin:sessions') ? livePanel() : null;
    const parts = [
      { id: 'users', label: 'Users', panel: users },
      { id: 'sessions', label: 'Sessions', panel: sessions },
      { id: 'live', label: 'Live', panel: live },
      { id: 'audit', label: 'Audit', panel: audit },
    ].filter((p) => p.panel);
    panels = parts.map((p) => p.panel);
    tabList = tabs(parts);
    replace(el, title, tabList.el);
  };
  build();
  // Rebuild only when the admin permissions change, so that other updates
  // (a role shown on Home, say) do not reset half-filled forms.
  const adminKey = () => `${can('admin:users')}/${can('admin:sessions')}/${can('admin:audit')}`;
  let key = adminKey();
  const unsubscribe = on('user', () => {
    if (adminKey() !== key) {
      key = adminKey();
      build();
    }
  });
  return { el, destroy: () => { unsubscribe(); panels.forEach((p) => p.destroy()); } };
}

function roleBoxes(legend, known, checked, onChange) {
  const boxes = known.map((role) => {
    const input = h('input', { type: 'checkbox', id: nextId('role'), value: role, checked: checked.includes(role), onchange: onChange });
    return { role, input, el: h('label', { class: 'check', for: input.id }, input, role) };
  });
  return {
    el: h('fieldset', { class: 'roles' }, h('legend', { class: legend.hidden ? 'visually-hidden' : null }, legend.text), boxes.map((b) => b.el)),
    selected: () => boxes.filter((b) => b.input.checked).map((b) => b.role),
  };
}

function usersPanel(directory, onUsers) {
  let users = [];
  let destroyed = false;
  const list = h('div', { 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
  const status = h('p', { class: 'hint', 'aria-live': 'polite', id: 'admin-users-status' });
  const knownRoles = () => [...new Set([...ROLE_HINTS, ...users.flatMap((u) => u.roles)])].sort();

  const load = async () => {
    try {
      ({ users } = await tether.rest('GET', '/api/admin/users'));
      if (destroyed) return;
      users.forEach((u) => directory.set(u.id, u.username));
      render();
      onUsers();
    } catch (e) {
      if (!destroyed) status.textContent = describe(e);
    }
  };

  const act = actionRunner(status, () => load());

  const row = (u) => {
    const self = u.id === state.user?.id;
    const save = h('button', { type: 'button', class: 'small', disabled: true }, 'Save roles');
    const roles = roleBoxes({ text: `Roles of ${u.username}`, hidden: true }, knownRoles(), u.roles, () => {
      save.disabled = roles.selected().join() === [...u.roles].sort().join();
    });
    save.addEventListener('click', () => act('PUT', `/api/admin/users/${u.id}/roles`, { roles: roles.selected() },
      () => `Saved the roles of ${u.username}.`));
    const toggle = h('button', {
      type: 'button',
      class: u.disabled ? 'small' : 'small danger',
      disabled: self && !u.disabled,
      title: self && !u.disabled ? 'You cannot disable your own account.' : null,
      onclick: () => act('PATCH', `/api/admin/users/${u.id}`, { disabled: !u.disabled },
        () => `${u.username} is now ${u.disabled ? 'enabled' : 'disabled'}.`),
    }, u.disabled ? 'Enable' : 'Disable');
    return {
      attrs: { dataset: { username: u.username, userId: u.id } },
      cells: [
        h('span', {}, u.username, self ? h('span', { class: 'tag' }, 'You') : null),
        h('div', { class: 'role-edit' }, roles.el, save),
        h('span', { class: u.disabled ? 'tag off' : 'tag on' }, u.disabled ? 'Disabled' : 'Active'),
        toggle,
      ],
    };
  };

  const render = () => {
    list.removeAttribute('aria-busy');
    replace(list, dataTable('Users', ['Username', 'Roles', 'Status', ''], users.map(row), 'No users.'));
  };

  // Create form
  const username = h('input', { id: 'new-username', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', required: true });
  const password = h('input', { id: 'new-password', type: 'password', autocomplete: 'new-password', minlength: '8', required: true });
  let newRoles = roleBoxes({ text: 'Roles' }, knownRoles(), ['user']);
  const rolesSlot = h('div', {}, newRoles.el);
  const create = h('form', {
    class: 'create-user',
    id: 'create-user-form',
    onsubmit: async (event) => {
      event.preventDefault();
      const ok = await act('POST', '/api/admin/users',
        { username: username.value.trim(), password: password.value, roles: newRoles.selected() },
        (res) => `Created ${res.user.username}.`);
      if (ok) {
        username.value = '';
        password.value = '';
        newRoles = roleBoxes({ text: 'Roles' }, knownRoles(), ['user']);
        replace(rolesSlot, newRoles.el);
      }
    },
  },
  h('div', { class: 'field' }, h('label', { for: username.id }, 'Username'), username),
  h('div', { class: 'field' }, h('label', { for: password.id }, 'Password (8 characters or more)'), password),
  rolesSlot,
  h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create user')));

  const el = h('article', { class: 'card', 'aria-labelledby': 'admin-users-title', id: 'admin-users' },
    h('h2', { id: 'admin-users-title' }, 'Users'),
    h('details', { class: 'create' }, h('summary', {}, 'New user'), create),
    status,
    list);
  load();
  return { el, destroy: () => { destroyed = true; } };
}

function sessionsPanel(directory) {
  let destroyed = false;
  let page = 1;
  let last = { sessions: [], total: 0 };
  const filter = h('select', { id: 'admin-session-user', onchange: () => { page = 1; load(true); } });
  const list = h('div', { 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
  const status = h('p', { class: 'hint', 'aria-live': 'polite', id: 'admin-sessions-status' });
  const updated = h('p', { class: 'hint' });
  const revokeAll = h('button', { type: 'button', class: 'danger', hidden: true });
  const pager = h('div', { class: 'pager' });

  const fillFilter = () => {
    fillUserOptions(filter, directory);
    const name = directory.get(filter.value);
    revokeAll.hidden = !filter.value;
    revokeAll.textContent = `Revoke all of ${name ?? 'this user'}'s sessions`;
  };

  const load = async (force = false) => {
    const query = new URLSearchParams({ page: String(page), per_page: String(PER_PAGE) });
    if (filter.value) query.set('user_id', filter.value);
    try {
      last = await tether.rest('GET', `/api/admin/sessions?${query}`);
      if (destroyed) return;
      let learned = false;
      for (const s of last.sessions) {
        if (s.user_id && s.username && !directory.has(s.user_id)) {
          directory.set(s.user_id, s.username);
          learned = true;
        }
      }
      if (learned) fillFilter();
      render(force);
      updatedAt(updated);
    } catch (e) {
      if (!destroyed) status.textContent = describe(e);
    }
  };

  const act = actionRunner(status, () => load(true));

  revokeAll.addEventListener('click', () => {
    const id = filter.value;
    const name = directory.get(id) ?? 'the user';
    act('DELETE', `/api/admin/users/${id}/sessions`, undefined, (res) => `Ended ${res.ended} session${res.ended === 1 ? '' : 's'} of ${name}.`);
  });

  const render = (force) => {
    list.removeAttribute('aria-busy');
    if (!force && list.contains(document.activeElement)) return;
    const rows = last.sessions.map((s) => {
      const mine = s.id === state.session?.id;
      return {
        attrs: { dataset: { session: s.id, username: s.username ?? '' } },
        cells: [
          h('span', {}, s.username ?? '—', mine ? h('span', { class: 'tag' }, 'This device') : null),
          h('span', { title: s.user_agent || '' }, browserName(s.user_agent)),
          s.client_ip || '—',
          timeEl(s.created_at, ago(s.created_at)),
          timeEl(s.last_seen_at, ago(s.last_seen_at)),
          h('span', { class: s.sockets ? 'sockets live' : 'sockets' }, String(s.sockets ?? 0)),
          h('button', {
            type: 'button',
            class: 'small danger',
            onclick: () => act('DELETE', `/api/admin/sessions/${encodeURIComponent(s.id)}`, undefined,
              () => `Revoked a session of ${s.username ?? 'a user'}.`),
          }, 'Revoke'),
        ],
      };
    });
    replace(list, dataTable('Sessions', ['User', 'Device', 'IP address', 'Signed in', 'Last seen', 'Sockets', ''], rows, 'No sessions.'));
    renderPager(pager, {
      page, total: last.total, perPage: PER_PAGE, noun: 'sessions', go: (p) => { page = p; load(true); },
    });
  };

  fillFilter();
  const el = h('article', { class: 'card', 'aria-labelledby': 'admin-sessions-title', id: 'admin-sessions' },
    h('h2', { id: 'admin-sessions-title' }, 'Sessions'),
    h('div', { class: 'toolbar' },
      h('div', { class: 'field inline' }, h('label', { for: filter.id }, 'User'), filter),
      revokeAll,
      h('button', { type: 'button', class: 'secondary', onclick: () => load(true) }, 'Refresh'),
      updated),
    status,
    list,
    pager);
  load();
  // Socket counts change as people come and go: keep them current.
  const stop = autoRefresh(() => load(), 3000);
  return {
    el,
    usersChanged: fillFilter,
    /** Lists the sessions of one user (from a link in the audit trail). */
    showUser: (id, name) => {
      if (name && !directory.has(id)) directory.set(id, name);
      fillFilter();
      filter.value = id;
      fillFilter();
      page = 1;
      load(true);
      el.scrollIntoView({ block: 'start' });
      filter.focus();
    },
    destroy: () => { destroyed = true; stop(); },
  };
}
