#include "relay/relay_group.h"

#include <pthread.h>

#include <atomic>
#include <string>
#include <thread>

namespace netprof {

RelayGroup::RelayGroup(size_t workers, const RelayOptions& options,
                       const std::function<ExchangeSink&(size_t)>& sink_of,
                       std::function<void(size_t, MonoNanos)> on_tick,
                       const std::function<ConnectionCounters&(size_t)>& counters_of) {
  if (workers == 0) workers = 1;
  for (size_t i = 0; i < workers; ++i) {
    RelayOptions worker_options = options;
    meters_.push_back(std::make_unique<LoopMeter>());
    worker_options.meter = meters_.back().get();
    worker_options.first_connection_id = i + 1;
    worker_options.connection_id_step = workers;
    if (on_tick) worker_options.on_tick = [on_tick, i](MonoNanos now) { on_tick(i, now); };
    workers_.push_back(std::make_unique<Relay>(worker_options, sink_of(i), counters_of(i)));
  }
}

RelayGroup::~RelayGroup() = default;

void RelayGroup::add_listener(ListenerSpec spec) {
  const size_t i = spec.worker % workers_.size();
  workers_[i]->add_listener(std::move(spec));
}

void RelayGroup::post_listeners(std::vector<ListenerSpec> specs) {
  std::vector<std::vector<ListenerSpec>> by_worker(workers_.size());
  for (ListenerSpec& spec : specs) by_worker[spec.worker % workers_.size()].push_back(std::move(spec));
  for (size_t i = 0; i < workers_.size(); ++i) {
    if (by_worker[i].empty()) continue;
    auto mine = std::make_shared<std::vector<ListenerSpec>>(std::move(by_worker[i]));
    Relay& relay = *workers_[i];
    relay.post([&relay, mine] {
      for (ListenerSpec& spec : *mine) relay.add_listener(std::move(spec));
    });
  }
}

void RelayGroup::post_remove_listeners(std::vector<ListenerRef> listeners) {
  std::vector<std::vector<ListenerId>> by_worker(workers_.size());
  for (const ListenerRef& ref : listeners) by_worker[ref.worker % workers_.size()].push_back(ref.id);
  for (size_t i = 0; i < workers_.size(); ++i) {
    if (by_worker[i].empty()) continue;
    Relay& relay = *workers_[i];
    relay.post([&relay, ids = std::move(by_worker[i])] {
      for (ListenerId id : ids) relay.remove_listener(id);
    });
  }
}

int RelayGroup::run() {
  if (workers_.size() == 1) return workers_[0]->run();
  std::vector<int> results(workers_.size(), 0);
  std::vector<std::thread> threads;
  for (size_t i = 1; i < workers_.size(); ++i) {
    threads.emplace_back([this, i, &results] {
      const std::string name = "netprof-w" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      results[i] = workers_[i]->run();
      if (results[i] != 0) request_stop();  // one failed loop stops them all, cleanly
    });
  }
  results[0] = workers_[0]->run();
  if (results[0] != 0) request_stop();
  for (std::thread& t : threads) t.join();
  for (int r : results)
    if (r != 0) return r;
  return 0;
}

void RelayGroup::request_stop() {
  for (auto& w : workers_) w->request_stop();
}

void RelayGroup::stall_for_tests(MonoNanos per_turn, MonoNanos duration, int64_t worker,
                                 int64_t scope) {
  for (size_t i = 0; i < workers_.size(); ++i)
    if (worker < 0 || static_cast<size_t>(worker) == i)
      workers_[i]->stall_for_tests(per_turn, duration, scope);
}

}  // namespace netprof
