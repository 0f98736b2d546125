# The Debian package: install() rules for what it holds, and CPack's DEB
# generator. Build it from a Release build with
#
#   scripts/package.sh        (or, in a built build folder: cd build && cpack -G DEB)
#
# The package holds
#   /usr/bin/castellan
#   /lib/systemd/system/castellan.service      contrib/castellan.service, run from /usr/bin
#   /etc/castellan/castellan.json              conffile: conf/examples/exchange2010-rpc-smtp.json
#   /usr/share/doc/castellan/                  README.md, the example configs
# and the maintainer scripts of contrib/debian/ (user, owners, admin token, systemd).
#
# Only the binary is in the default install component, under CMAKE_INSTALL_PREFIX
# (/usr/local unless told): `cmake --install build` copies it where the unit of
# contrib/ expects it and writes nothing into /etc or /lib. The rest is the
# component "debian", installed only when asked for by name, as CPack does.

include(GNUInstallDirs)

install(TARGETS castellan RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT castellan)

# The unit of contrib/ runs /usr/local/bin/castellan (a build installed by hand);
# the package's binary is /usr/bin/castellan, and so is every /usr/local/bin its
# comments name. Made at configure time, and made
# again when contrib/castellan.service changes.
set(castellan_unit_source ${CMAKE_SOURCE_DIR}/contrib/castellan.service)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${castellan_unit_source})
file(READ ${castellan_unit_source} castellan_unit)
string(REPLACE "/usr/local/bin" "/usr/bin" castellan_unit "${castellan_unit}")
if(NOT castellan_unit MATCHES "\nExecStart=/usr/bin/castellan ")
  message(FATAL_ERROR "contrib/castellan.service: ExecStart= no longer runs /usr/local/bin/castellan; "
                      "update cmake/debian_package.cmake")
endif()
# Its opening comment gives the steps for a build from source, which the package
# has done already: say so before them.
set(castellan_unit "# Installed by the castellan Debian package, which did the install steps below
# for you (binary /usr/bin/castellan, user castellan, /etc/castellan with the
# config and admin.token). Edit /etc/castellan/castellan.json, then:
#   systemctl enable --now castellan
#
${castellan_unit}")
set(castellan_packaging_dir ${CMAKE_BINARY_DIR}/debian-package)
file(WRITE ${castellan_packaging_dir}/castellan.service "${castellan_unit}")

# Implicitly created folders (/usr/bin, /etc, /lib/systemd/system) are 755 in the
# package whatever the umask of the shell that builds it: dpkg would give a
# stricter mode to the folders on the target system.
set(CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

install(FILES ${castellan_packaging_dir}/castellan.service
        DESTINATION /lib/systemd/system
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
        COMPONENT debian EXCLUDE_FROM_ALL)
# /etc/castellan holds the admin token and, later, TLS keys: not for everyone.
# The package makes it root:root 750; the postinst gives it to group castellan.
install(DIRECTORY DESTINATION /etc/castellan
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
        COMPONENT debian EXCLUDE_FROM_ALL)
install(FILES ${CMAKE_SOURCE_DIR}/conf/examples/exchange2010-rpc-smtp.json
        DESTINATION /etc/castellan
        RENAME castellan.json
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
        COMPONENT debian EXCLUDE_FROM_ALL)
install(FILES ${CMAKE_SOURCE_DIR}/README.md
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/castellan
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
        COMPONENT debian EXCLUDE_FROM_ALL)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/conf/examples/
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/castellan/examples
        FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                              WORLD_READ WORLD_EXECUTE
        COMPONENT debian EXCLUDE_FROM_ALL)

# dpkg keeps an administrator's edits to a conffile across upgrades and asks
# before replacing it; CPack does not mark /etc files itself.
file(WRITE ${castellan_packaging_dir}/conffiles "/etc/castellan/castellan.json\n")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME castellan)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "load balancer for Exchange 2010 Client Access server arrays")
# One line per line of the control file (CPack indents them; policy wants < 80).
string(CONCAT CPACK_PACKAGE_DESCRIPTION
       "castellan spreads the connections of Outlook (MAPI/RPC on port 135 and the\n"
       "static RPC ports), SMTP and HTTPS clients over the CAS servers of an\n"
       "Exchange 2010 array, keeps each client on the same CAS, and sends clients\n"
       "to a surviving CAS when one stops answering. One program with one JSON\n"
       "config file, /etc/castellan/castellan.json, run by systemd as the user\n"
       "castellan. The package does not start it: edit the config, then run\n"
       "systemctl enable --now castellan.")
set(CASTELLAN_PACKAGE_MAINTAINER "castellan maintainers <maintainers@users.noreply.h-seed-84d2d8e6.example>"
    CACHE STRING "Maintainer field of the Debian package")
set(CPACK_PACKAGE_CONTACT ${CASTELLAN_PACKAGE_MAINTAINER})
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${CASTELLAN_PACKAGE_MAINTAINER})
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Depends: the libraries the binary links (dpkg-shlibdeps, from dpkg-dev), and
# adduser for the postinst.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS adduser)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/contrib/debian/postinst
    ${CMAKE_SOURCE_DIR}/contrib/debian/prerm
    ${CMAKE_SOURCE_DIR}/contrib/debian/postrm
    ${castellan_packaging_dir}/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_STRIP_FILES TRUE)
# cpack packages the binary that is built; it does not build "all" first (the
# tests and every library, minutes on this project's machines, outside the
# build lock). scripts/package.sh builds castellan before it packages.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
# One package from both components.
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_COMPONENTS_ALL castellan debian)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/package)
include(CPack)
