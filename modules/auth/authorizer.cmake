# The local authorizer (helper "authz"), included at the end of modules/auth/CMakeLists.txt
# after auth_lib: its logic joins auth_lib (tests link that), its shim is its own module.
target_sources(auth_lib PRIVATE ${CMAKE_CURRENT_LIST_DIR}/acls.cc
                                ${CMAKE_CURRENT_LIST_DIR}/local_authorizer.cc)
target_link_libraries(auth_lib PRIVATE Poco::Foundation Poco::JSON)

tessera_add_module(tessera_authorizer_local SOURCES ${CMAKE_CURRENT_LIST_DIR}/authorizer_module.cc
                   LIBRARIES auth_lib)
if(TARGET tessera)
  add_dependencies(tessera tessera_authorizer_local)
endif()
install(TARGETS tessera_authorizer_local LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/tessera)
