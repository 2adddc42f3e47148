// Home: who I am, the three messages asked for over the socket, and the chat.
// Parts that depend on permissions update in place on `permissions.changed`.

import { tether } from '../client.js';
import { h, replace, nextId, timeEl } from '../dom.js';
import { state, on, can } from '../state.js';

const MESSAGES = [
  { type: 'messages.public', label: 'Public message' },
  { type: 'messages.protected', label: 'Protected message' },
  { type: 'messages.admin', label: 'Admin message', needs: 'read:admin-messages' },
];
const ROOM_RE = /^[A-Za-z0-9._-]{1,64}$/;

export function homeView() {
  const subs = [];
  const identity = h('dl', { class: 'facts' });
  const renderIdentity = () => {
    const chips = (items, empty) => (items.length
      ? h('ul', { class: 'chips' }, items.map((i) => h('li', {}, i)))
      : h('span', { class: 'muted' }, empty));
    replace(identity,
      h('dt', {}, 'Username'), h('dd', { id: 'me-username' }, state.user.username),
      h('dt', {}, 'Roles'), h('dd', { id: 'me-roles' }, chips(state.user.roles ?? [], 'none')),
      h('dt', {}, 'Permissions'), h('dd', { id: 'me-permissions' }, chips(state.user.permissions ?? [], 'none')));
  };
  renderIdentity();
  subs.push(on('user', renderIdentity));

  const messages = messagesCard(subs);
  const chat = chatCard(subs);

  const el = h('section', { dataset: { view: 'home' } },
    h('h1', { tabindex: '-1', id: 'home-title' }, 'Hello, ', state.user.username),
    h('div', { class: 'grid' },
      h('article', { class: 'card', 'aria-labelledby': 'who-title' }, h('h2', { id: 'who-title' }, 'Who I am'), identity),
      messages,
      chat));
  return { el, destroy: () => subs.forEach((u) => u()) };
}

function messagesCard(subs) {
  const rows = MESSAGES.map(({ type, label, needs }) => {
    const output = h('output', { class: 'reply', 'aria-live': 'polite', dataset: { message: type } });
    const hint = needs && h('p', { class: 'hint', id: nextId('hint') });
    const button = h('button', {
      type: 'button',
      class: 'secondary',
      dataset: { message: type },
      'aria-describedby': hint ? hint.id : null,
      onclick: async () => {
        output.className = 'reply pending';
        output.textContent = 'Asking…';
        try {
          const reply = await tether.request(type);
          output.className = 'reply ok';
          output.textContent = reply?.text ?? '';
        } catch (e) {
          output.className = 'reply denied';
          output.textContent = e.code === 'forbidden' ? 'Permission denied' : e.message;
        }
      },
    }, label);
    const refresh = () => {
      if (!needs) return;
      const allowed = can(needs);
      // The button stays usable either way: asking without the permission
      // shows the server's "Permission denied".
      button.dataset.allowed = String(allowed);
      hint.hidden = allowed;
      hint.textContent = allowed ? '' : `Needs ${needs}, which you do not have.`;
    };
    refresh();
    subs.push(on('user', refresh));
    return h('li', { class: 'message-row' }, button, hint, output);
  });
  return h('article', { class: 'card', 'aria-labelledby': 'messages-title' },
    h('h2', { id: 'messages-title' }, 'Messages'),
    h('p', { class: 'muted' }, 'Asked over the live connection; each check uses your permissions as they are now.'),
    h('ul', { class: 'plain' }, rows));
}

function chatCard(subs) {
  const room = h('input', { id: 'chat-room', value: 'lobby', maxlength: '64', autocomplete: 'off', spellcheck: 'false' });
  const text = h('input', { id: 'chat-text', maxlength: '2000', autocomplete: 'off', required: true });
  const send = h('button', { type: 'submit' }, 'Send');
  const log = h('ol', { class: 'chat-log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Chat messages' });
  const status = h('p', { class: 'hint', 'aria-live': 'polite' });

  const line = (m) => h('li', { class: m.from === state.user?.username ? 'mine' : null },
    h('span', { class: 'chat-meta' },
      h('strong', { class: 'chat-from' }, m.from), ' ',
      h('span', { class: 'chat-room' }, '#', m.room), ' ',
      timeEl(m.at, new Date(m.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }))),
    h('span', { class: 'chat-text' }, m.text));
  const empty = () => h('li', { class: 'muted empty' }, 'No messages yet. Messages sent while this page is open appear here.');
  replace(log, state.chat.length ? state.chat.map(line) : empty());
  subs.push(on('chat', (m) => {
    log.querySelector('.empty')?.remove();
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(line(m));
    while (log.children.length > 500) log.firstElementChild.remove();
    if (nearBottom) log.scrollTop = log.scrollHeight;
  }));

  const refresh = () => {
    const write = can('chat:write');
    text.disabled = !write;
    send.disabled = !write;
    const missing = [!can('chat:read') && 'chat:read (to see messages)', !write && 'chat:write (to send)'].filter(Boolean);
    status.textContent = missing.length ? `You lack ${missing.join(' and ')}.` : '';
  };
  refresh();
  subs.push(on('user', refresh));

  const onSubmit = async (event) => {
    event.preventDefault();
    const r = room.value.trim();
    const t = text.value;
    if (!ROOM_RE.test(r)) {
      status.textContent = 'A room is 1 to 64 letters, digits, "-", "_" or ".".';
      return;
    }
    if (!t.trim()) return;
    send.disabled = true;
    try {
      await tether.request('chat.send', { room: r, text: t });
      text.value = '';
      status.textContent = '';
    } catch (e) {
      status.textContent = e.code === 'forbidden' ? 'Permission denied' : e.message;
    } finally {
      send.disabled = !can('chat:write');
      text.focus();
    }
  };

  return h('article', { class: 'card chat', 'aria-labelledby': 'chat-title' },
    h('h2', { id: 'chat-title' }, 'Chat'),
    log,
    h('form', { class: 'chat-form', id: 'chat-form', onsubmit: onSubmit },
      h('div', { class: 'field room' }, h('label', { for: room.id }, 'Room'), room),
      h('div', { class: 'field grow' }, h('label', { for: text.id }, 'Message'), text),
      h('div', { class: 'actions' }, send)),
    status);
}
