# anklume trust colours for infrastructure student-sysadmin (anklume desktop i3).
# Windows are matched on their class, "anklume.<domain>" or
# "anklume.<domain>.<machine>", set by the host-side program that opens them,
# never on their title. Each gets a [domain] tag in its trust colour.

# anklume: admin (blue)
#   launch sa-admin: xterm -class anklume.anklume.sa-admin -e anklume shell sa-admin
for_window [class="^anklume\.anklume(\..+)?$"] border normal 3, title_format "<span background='#3333ff' foreground='#ffffff'> [anklume] </span> %title"

# lab: semi-trusted (yellow)
#   launch lab-client: xterm -class anklume.lab.lab-client -e anklume shell lab-client
#   launch lab-db: xterm -class anklume.lab.lab-db -e anklume shell lab-db
#   launch lab-web: xterm -class anklume.lab.lab-web -e anklume shell lab-web
for_window [class="^anklume\.lab(\..+)?$"] border normal 3, title_format "<span background='#cccc33' foreground='#000000'> [lab] </span> %title"

# sandbox: disposable (magenta)
#   launch sbx-vm: xterm -class anklume.sandbox.sbx-vm -e anklume shell sbx-vm
for_window [class="^anklume\.sandbox(\..+)?$"] border normal 3, title_format "<span background='#cc33cc' foreground='#ffffff'> [sandbox] </span> %title"
