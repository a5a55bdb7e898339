#!/usr/bin/env bash
# A real local mail loop for the tests: the machine's Postfix (SMTP) and Dovecot (IMAP), configured for local delivery
# only, with local Unix users as the mailboxes. Source this file, then `mail_start` and `mail_stop`. Needs root and the
# Debian packages postfix, dovecot-imapd and dovecot-sieve (test.sh installs them, preseeding Postfix as "Local only").
# It rewrites the system's Postfix main.cf settings and /etc/dovecot/local.conf: meant for test machines and CI only.
#
# What mail_start exports for the tests:
#   ET_TEST_MAIL=1                      the mail loop is up
#   ET_TEST_SMTP_HOST, ET_TEST_SMTP_PORT  Postfix, plain SMTP on loopback (127.0.0.1:25 unless 25 is taken); no TLS;
#                                       no authentication needed from loopback, AUTH PLAIN/LOGIN offered (same users)
#   ET_TEST_IMAP_HOST, ET_TEST_IMAP_PORT  Dovecot, plain IMAP on loopback (127.0.0.1:143 unless 143 is taken); no TLS
#   ET_TEST_MAIL_PASSWORD               the password of every test user (IMAP login and SMTP AUTH)
#   ET_TEST_MAIL_USERS                  the test users, space-separated: et-sender et-alice et-bob et-carol et-robot
#   ET_TEST_MAIL_DOMAIN                 example.test: "our" domain (the product's users)
#   ET_TEST_MAIL_PARTNER_DOMAIN         partner.test: a second local domain for "external" correspondents
#   ET_TEST_MAIL_ROBOT                  et-robot: answers every message with an out-of-office reply (see below)
#   ET_TEST_MAIL_ROBOT_RETURN           the return date its reply states, yyyy-mm-dd (a week after today)
#   ET_TEST_MAIL_LOGS                   folder with postfix.log (deliveries, and the LDA's errors) and dovecot.log
#
# Every user is a mailbox under every local domain (localhost, example.test, partner.test): et-bob@partner.test and
# et-bob@example.test are one INBOX. By convention et-sender and et-alice are "ours" (example.test) and et-bob,
# et-carol and et-robot "theirs" (partner.test). Plus-addressing works: et-sender+anything@example.test lands in
# et-sender's INBOX. Every INBOX is emptied at each start, so runs are repeatable; tests still find their own messages
# by unique Message-ID or subject, never as "the only message in the box".
#
# Unknown local users (say nobody@example.test) are accepted at SMTP time and then bounced by local delivery: the
# sender gets a real DSN (multipart/report; report-type=delivery-status, original message attached) within seconds.
# Mail to any non-local domain bounces the same way (default_transport = error): nothing ever leaves the machine.
#
# The robot: Postfix hands every local delivery to Dovecot's LDA (mailbox_command), which runs et-robot's Sieve script,
# a RFC 5230 `vacation` with `:days 1`: an RFC 3834 auto-reply (Auto-Submitted: auto-replied, In-Reply-To and
# References = the original Message-ID, Subject "Auto: <original subject>", null envelope sender) goes to the envelope
# sender, and the original is kept in et-robot's INBOX. Sieve vacation answers one sender once per day (the memory is
# wiped at each start), and never a message that is itself automatic (Auto-Submitted, Precedence: bulk/list/junk,
# List-Id, null sender, MAILER-DAEMON) or that lacks et-robot's address in To/Cc. A test that needs a reply every
# time sends from a sender of its own: et-sender+<unique>@example.test.

MAIL_USERS=(et-sender et-alice et-bob et-carol et-robot)
MAIL_PASSWORD=et-mail-test
MAIL_DOMAIN=example.test
MAIL_PARTNER_DOMAIN=partner.test
# An address the SMTP server refuses for now (450), every time, as a greylisting server does at first.
MAIL_GREYLISTED=et-greylisted
MAIL_ROBOT=et-robot
# Postfix writes its own log only under /var (maillog_file_prefixes).
MAIL_LOGS=/var/log/et-mail

# Port $1 if nothing listens there, else the first free one from $2 on.
mail_port() {
  local p
  for p in "$1" $(seq "$2" $(( $2 + 100 ))); do
    (echo >"/dev/tcp/127.0.0.1/$p") >/dev/null 2>&1 || { echo "$p"; return 0; }
  done
  return 1
}

# Waits until something accepts connections on 127.0.0.1:$1.
mail_wait_port() {
  for _ in $(seq 1 150); do
    (echo >"/dev/tcp/127.0.0.1/$1") >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

mail_dovecot_pid() {
  local pid
  pid=$(cat /run/dovecot/master.pid 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# Stops both daemons if they run (ours from a crashed run, or the package's own), and waits until they are gone.
# Never fails. The daemons keep inherited descriptors open, so nothing they print may go to a pipe.
mail_stop_daemons() {
  local pid
  if postfix status >/dev/null 2>&1; then
    postfix stop >>"$MAIL_LOGS/start.log" 2>&1 </dev/null || true
    for _ in $(seq 1 100); do postfix status >/dev/null 2>&1 || break; sleep 0.1; done
  fi
  if pid=$(mail_dovecot_pid); then
    doveadm stop >>"$MAIL_LOGS/start.log" 2>&1 </dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  return 0
}

mail_users() {
  local u
  for u in "${MAIL_USERS[@]}"; do
    id -u "$u" >/dev/null 2>&1 || useradd --create-home --shell /usr/sbin/nologin "$u"
    printf '%s:%s\n' "$u" "$MAIL_PASSWORD" | chpasswd
  done
}

# Empties every test mailbox (mail, Dovecot's indexes, the vacation memory) and the Postfix queue: a clean slate.
mail_reset_boxes() {
  local u home
  for u in "${MAIL_USERS[@]}"; do
    home=$(getent passwd "$u" | cut -d: -f6)
    rm -rf "$home/Maildir" "$home/.dovecot.lda-dupes" "$home/.dovecot.lda-dupes.locks" "$home/.dovecot.svbin"
    install -d -o "$u" -g "$u" -m 700 "$home/Maildir" "$home/Maildir/cur" "$home/Maildir/new" "$home/Maildir/tmp"
  done
  # Postfix is stopped here: drop the queue files themselves (postsuper would log to a file it may not create).
  local q; q=$(postconf -h queue_directory)
  find "$q"/{maildrop,incoming,active,deferred,bounce,defer,trace,hold,corrupt} -type f -delete 2>/dev/null || true
  return 0
}

mail_configure_postfix() {
  local smtp_port=$1
  postconf -e \
    "myhostname = mail.$MAIL_DOMAIN" \
    "myorigin = $MAIL_DOMAIN" \
    "mydestination = localhost, $MAIL_DOMAIN, $MAIL_PARTNER_DOMAIN" \
    "inet_interfaces = loopback-only" \
    "inet_protocols = ipv4" \
    "mynetworks = 127.0.0.0/8" \
    "relayhost =" \
    "default_transport = error" \
    "relay_transport = error" \
    "recipient_delimiter = +" \
    "home_mailbox = Maildir/" \
    "mailbox_command = /usr/lib/dovecot/dovecot-lda -f \"\$SENDER\" -a \"\$RECIPIENT\"" \
    "local_recipient_maps =" \
    "luser_relay =" \
    "smtpd_tls_security_level = none" \
    "smtp_tls_security_level = none" \
    "smtpd_sasl_type = dovecot" \
    "smtpd_sasl_path = private/auth" \
    "smtpd_sasl_auth_enable = yes" \
    "smtpd_tls_auth_only = no" \
    "smtpd_error_sleep_time = 0" \
    "smtpd_recipient_restrictions = check_recipient_access inline:{ { $MAIL_GREYLISTED@$MAIL_PARTNER_DOMAIN = 450 4.7.1 Greylisted: please try again later } }" \
    "in_flow_delay = 0" \
    "message_size_limit = 52428800" \
    "queue_run_delay = 1s" \
    "minimal_backoff_time = 1s" \
    "maximal_backoff_time = 5s" \
    "bounce_queue_lifetime = 1m" \
    "maximal_queue_lifetime = 5m" \
    "delay_warning_time = 0" \
    "maillog_file = $MAIL_LOGS/postfix.log"
  # Unknown local users: with local_recipient_maps empty smtpd accepts them, and local(8), with no luser_relay, bounces
  # them as "unknown user" with a DSN to the sender, as a real remote server would after accepting the message.
  # No chroot: a bare `postfix start` does not copy /etc files into the chroot the way the init script does.
  postconf -F '*/*/chroot = n'
  # The SMTP listener: port 25, or another one if something else holds 25.
  local name
  for name in $(postconf -M | awk '$2 == "inet" && $8 == "smtpd" { print $1 }'); do
    postconf -MX "$name/inet"
  done
  name=smtp; [ "$smtp_port" = 25 ] || name=$smtp_port
  postconf -M "$name/inet = $name inet n - n - - smtpd"
  newaliases
}

mail_configure_dovecot() {
  local imap_port=$1
  cat >/etc/dovecot/local.conf <<EOF
# Written by EmailTracking's tests/scripts/mail.sh: a local-only IMAP server for the tests. Read after conf.d.
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
# Tests wait for IDLE notifications: check the Maildir every second should inotify miss a change.
mailbox_idle_check_interval = 1 secs
log_path = $MAIL_LOGS/dovecot.log
# Tests refuse logins on purpose (a changed password); brute-force penalties would then delay every later login
# from 127.0.0.1, other tests' included, by up to 15 s. No failure delay and no penalty here.
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    port = 0
  }
}
# Postfix authenticates SMTP clients (SMTP AUTH) against the same users.
service auth {
  unix_listener /var/spool/postfix/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
# Postfix's local(8) runs the LDA as the recipient: Sieve for et-robot's vacation, then ~/Maildir.
# It logs to its stderr, which Postfix puts in postfix.log when a delivery fails (the LDA cannot open root's files).
protocol lda {
  mail_plugins = \$mail_plugins sieve
  log_path = /dev/stderr
}
# The LDA, running as the recipient, reports to the stats service: let it connect (else it logs an error each time).
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
}
EOF
  chmod 644 /etc/dovecot/local.conf
}

# et-robot's out-of-office reply, with a return date a week from today that the product can read.
mail_configure_robot() {
  local home
  home=$(getent passwd "$MAIL_ROBOT" | cut -d: -f6)
  MAIL_ROBOT_RETURN=$(date -u -d '+7 days' +%Y-%m-%d)
  local spoken; spoken=$(date -u -d "$MAIL_ROBOT_RETURN" '+%A %-d %B %Y')
  cat >"$home/.dovecot.sieve" <<EOF
require ["vacation"];
vacation :days 1
  :addresses ["$MAIL_ROBOT@$MAIL_DOMAIN", "$MAIL_ROBOT@$MAIL_PARTNER_DOMAIN", "$MAIL_ROBOT@localhost"]
  "Thank you for your message. I am out of the office until $spoken ($MAIL_ROBOT_RETURN) with no access to email.
I will answer when I am back.";
keep;
EOF
  chown "$MAIL_ROBOT:$MAIL_ROBOT" "$home/.dovecot.sieve"
}

mail_start() {
  [ "$(id -u)" = 0 ] || { echo "mail_start needs root (it configures the system's Postfix and Dovecot)" >&2; return 1; }
  command -v postfix >/dev/null 2>&1 || { echo "Postfix is not installed" >&2; return 1; }
  [ -x /usr/sbin/dovecot ] || { echo "Dovecot is not installed" >&2; return 1; }
  [ -x /usr/lib/dovecot/dovecot-lda ] && ls /usr/lib/dovecot/modules/lib90_sieve_plugin.so >/dev/null 2>&1 \
    || { echo "dovecot-sieve is not installed" >&2; return 1; }
  MAIL_ACTIVE=1
  install -d -m 755 "$MAIL_LOGS"
  : >"$MAIL_LOGS/start.log"
  mail_stop_daemons
  rm -f "$MAIL_LOGS/postfix.log" "$MAIL_LOGS/dovecot.log"

  local smtp_port imap_port
  smtp_port=$(mail_port 25 2525) && imap_port=$(mail_port 143 10143) \
    || { echo "no free port for SMTP or IMAP" >&2; return 1; }
  mail_users
  mail_reset_boxes
  mail_configure_postfix "$smtp_port" >>"$MAIL_LOGS/start.log" 2>&1 \
    || { cat "$MAIL_LOGS/start.log" >&2; return 1; }
  mail_configure_dovecot "$imap_port"
  mail_configure_robot

  # Dovecot first: Postfix's SMTP AUTH talks to its auth socket.
  dovecot >>"$MAIL_LOGS/start.log" 2>&1 </dev/null || { cat "$MAIL_LOGS/start.log" >&2; return 1; }
  mail_wait_port "$imap_port" \
    || { echo "Dovecot did not listen on $imap_port" >&2; cat "$MAIL_LOGS/start.log" "$MAIL_LOGS/dovecot.log" >&2; return 1; }
  postfix start >>"$MAIL_LOGS/start.log" 2>&1 </dev/null || { cat "$MAIL_LOGS/start.log" >&2; return 1; }
  mail_wait_port "$smtp_port" \
    || { echo "Postfix did not listen on $smtp_port" >&2; cat "$MAIL_LOGS/start.log" "$MAIL_LOGS/postfix.log" >&2; return 1; }

  export ET_TEST_MAIL=1
  export ET_TEST_SMTP_HOST=127.0.0.1 ET_TEST_SMTP_PORT=$smtp_port
  export ET_TEST_IMAP_HOST=127.0.0.1 ET_TEST_IMAP_PORT=$imap_port
  export ET_TEST_MAIL_PASSWORD=$MAIL_PASSWORD
  export ET_TEST_MAIL_USERS="${MAIL_USERS[*]}"
  export ET_TEST_MAIL_DOMAIN=$MAIL_DOMAIN ET_TEST_MAIL_PARTNER_DOMAIN=$MAIL_PARTNER_DOMAIN ET_TEST_MAIL_GREYLISTED=$MAIL_GREYLISTED
  export ET_TEST_MAIL_ROBOT=$MAIL_ROBOT ET_TEST_MAIL_ROBOT_RETURN=$MAIL_ROBOT_RETURN
  export ET_TEST_MAIL_LOGS=$MAIL_LOGS
  echo "mail loop: SMTP 127.0.0.1:$smtp_port, IMAP 127.0.0.1:$imap_port, users ${MAIL_USERS[*]} (logs in $MAIL_LOGS)"
}

# Stops Postfix and Dovecot if mail_start ran, whether or not it got them both up. Never fails.
mail_stop() {
  [ -n "${MAIL_ACTIVE:-}" ] || return 0
  mail_stop_daemons
  MAIL_ACTIVE=
  return 0
}
