# Writes IN as a C++ raw string literal (kDashboardHtml) into OUT.
file(READ ${IN} content)
string(FIND "${content}" ")netprof_embed\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter")
endif()
file(WRITE ${OUT} "// Generated from admin/dashboard.html by embed_file.cmake. Do not edit.\n"
                  "namespace netprof {\nextern const char* const kDashboardHtml;\n"
                  "const char* const kDashboardHtml = R\"netprof_embed(${content})netprof_embed\";\n}\n")
