# anklume trust colours for infrastructure sandbox-isolation (anklume desktop i3).
# Windows are matched on their class, "anklume.<domain>" or
# "anklume.<domain>.<machine>", set by the host-side program that opens them,
# never on their title. Each gets a [domain] tag in its trust colour.

# anklume: admin (blue)
#   launch sbx-admin: xterm -class anklume.anklume.sbx-admin -e anklume shell sbx-admin
for_window [class="^anklume\.anklume(\..+)?$"] border normal 3, title_format "<span background='#3333ff' foreground='#ffffff'> [anklume] </span> %title"

# sandbox: disposable (magenta)
#   launch sbx-monitor: xterm -class anklume.sandbox.sbx-monitor -e anklume shell sbx-monitor
#   launch sbx-test: xterm -class anklume.sandbox.sbx-test -e anklume shell sbx-test
#   launch sbx-vm: xterm -class anklume.sandbox.sbx-vm -e anklume shell sbx-vm
for_window [class="^anklume\.sandbox(\..+)?$"] border normal 3, title_format "<span background='#cc33cc' foreground='#ffffff'> [sandbox] </span> %title"
