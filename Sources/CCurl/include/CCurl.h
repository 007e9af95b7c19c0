#ifndef SHIP_CCURL_H
#define SHIP_CCURL_H
#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: typed wrappers.
CURLcode ship_curl_set_string(CURL *curl, CURLoption option, const char *value);
CURLcode ship_curl_set_long(CURL *curl, CURLoption option, long value);
CURLcode ship_curl_set_offset(CURL *curl, CURLoption option, curl_off_t value);
CURLcode ship_curl_set_pointer(CURL *curl, CURLoption option, void *value);
CURLcode ship_curl_set_write(CURL *curl, size_t (*callback)(char *, size_t, size_t, void *), void *context);
CURLcode ship_curl_set_header_callback(CURL *curl, size_t (*callback)(char *, size_t, size_t, void *), void *context);
CURLcode ship_curl_set_read(CURL *curl, size_t (*callback)(char *, size_t, size_t, void *), void *context);
long ship_curl_response_code(CURL *curl);

#endif
